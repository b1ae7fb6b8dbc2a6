/** The record viewer (placeholder until its pages land). */
import { createRoot } from 'react-dom/client';

createRoot(document.getElementById('root') as HTMLElement).render(
  <main>
    <h1>Tributary record viewer</h1>
  </main>,
);

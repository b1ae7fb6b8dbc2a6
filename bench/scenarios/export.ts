import { round } from '../lib/stats';
import { type BenchContext, bearer, ensureDataset, notAvailable, report, settle, tenant } from './context';

/**
 * export: a system-level Bulk Data `$export` of the aggregated record as the dataset's tenant sees it
 * (issue 19 item 5) → resources written to NDJSON per second, from the kick-off to the manifest. The
 * resources are those the tenant may see (its own feed's), counted from the manifest. Run alone it loads
 * 100 patients (about 19,000 aggregated resources): fewer take a tenth of a second at the target, too little
 * to time. The status is polled every 20 ms, so the poll adds little to the time measured.
 */
export async function exportScenario(ctx: BenchContext): Promise<void> {
  const id = 'export.rps';
  const metric = 'system $export to NDJSON, kick-off to manifest';
  await ensureDataset(ctx, Math.min(ctx.settings.patients, 100));
  await settle(ctx);
  const t = await tenant(ctx);
  const started = performance.now();
  const kick = await fetch(`${ctx.server.url}/fhir/aggregated/$export`, { headers: { ...bearer(t), prefer: 'respond-async', accept: 'application/fhir+json' } });
  const location = kick.headers.get('content-location');
  if (kick.status !== 202 || !location) return notAvailable(ctx, id, 'export', metric, `kick-off answered ${kick.status}`);
  // The status URL names the server's public base; the bench reaches the same path on its own URL.
  const status = `${ctx.server.url}${new URL(location).pathname}`;
  for (;;) {
    const res = await fetch(status, { headers: bearer(t) });
    if (res.status === 200) {
      const seconds = (performance.now() - started) / 1000;
      const manifest = (await res.json()) as { output: { count: number }[] };
      const written = manifest.output.reduce((n, o) => n + o.count, 0);
      report(ctx, {
        id,
        scenario: 'export',
        metric,
        value: round(written / seconds),
        unit: 'resources/s',
        target: '≥ 20,000',
        note: `${written} resources in ${round(seconds, 1)} s`,
      });
      return;
    }
    if (res.status !== 202) return notAvailable(ctx, id, 'export', metric, `status answered ${res.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

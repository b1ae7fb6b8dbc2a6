import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Figure } from '../scenarios/context';
import { ROOT } from './server';

/** Results: a markdown table for people, JSON with the raw figures and the facts needed to compare runs. */
export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  os: string;
  postgres?: string;
}

export function machineFacts(postgres?: string): MachineFacts {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.platform()} ${os.release()}`,
    ...(postgres ? { postgres } : {}),
  };
}

export function gitCommit(): string {
  try {
    const commit = execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    return dirty ? `${commit}+changes` : commit;
  } catch {
    return 'unknown';
  }
}

function cell(v: unknown): string {
  if (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))) return '';
  return String(v).replace(/\|/g, '\\|');
}

export function markdown(figures: Figure[]): string {
  const lines = ['| scenario | metric | value | unit | floor | ratio | target | note |', '|---|---|---:|---|---:|---:|---|---|'];
  for (const f of figures) {
    lines.push(`| ${cell(f.scenario)} | ${cell(f.metric)} | ${cell(f.value)} | ${cell(f.unit)} | ${cell(f.floor)} | ${cell(f.ratio)} | ${cell(f.target)} | ${cell(f.note)} |`);
  }
  return lines.join('\n');
}

export interface StoreRun {
  store: 'postgres' | 'pglite';
  date: string;
  commit: string;
  command: string;
  machine: MachineFacts;
  settings: Record<string, unknown>;
  dataset: { patients: number; resources: number };
  seconds: Record<string, number>;
  figures: Figure[];
}

export function header(run: StoreRun): string {
  const m = run.machine;
  const store = run.store === 'postgres' ? `PostgreSQL ${m.postgres ?? ''}`.trim() : 'embedded (PGlite)';
  return `Store: ${store}; dataset ${run.dataset.patients} patients, ${run.dataset.resources} resources; aggregation worker ${run.settings.aggregation ? 'on' : 'off'}; commit ${run.commit}; ${run.date}; ${m.cores} × ${m.cpu}, ${m.memoryGb} GB RAM; Node ${m.node}`;
}

/** Writes `<date>-<store>[-quick].json` and `.md` into `dir`; returns the JSON path. */
export function save(dir: string, run: StoreRun, quick: boolean): string {
  mkdirSync(dir, { recursive: true });
  const stem = `${run.date.replace(/[:.]/g, '-')}-${run.store}${quick ? '-quick' : ''}`;
  const file = path.join(dir, `${stem}.json`);
  writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(path.join(dir, `${stem}.md`), `\`${run.command}\`\n\n${header(run)}\n\n${markdown(run.figures)}\n`);
  return file;
}

import type { AggregationReport } from '../aggregator/report';

/**
 * `aggregation report` for people: the aggregation report (aggregator/report.ts) as plain-text tables, root
 * causes first — what an integrator acts on — then the counts per type and the exclusions per rule, with the
 * types the excluded resources refer to where the rule is about a reference.
 */
const n = (v: number) => v.toLocaleString('en-GB');

function table(header: string[], rows: string[][], rightAligned: number[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const cell = (v: string, i: number) => (rightAligned.includes(i) ? v.padStart(widths[i]) : v.padEnd(widths[i]));
  return [header, ...rows].map((r) => `  ${r.map(cell).join('  ')}`.trimEnd());
}

export function formatReport(report: AggregationReport): string {
  const t = report.totals;
  const seen = t.included + t.excluded;
  const lines = [
    `Aggregation report for endpoint ${report.endpoint} (${report.generatedAt})`,
    `${n(seen)} resources: ${n(t.included)} included, ${n(t.excluded)} excluded` + `; ${n(t.pending)} pending, ${n(t.parked)} parked, ${n(t.deleted)} deleted on the endpoint`,
    '',
  ];
  if (report.rootCauses.length) {
    lines.push('Why resources are excluded (root causes):');
    for (const c of report.rootCauses) {
      lines.push(`  ${c.summary}`);
      if (c.cascade.length) lines.push(`      excluded through them: ${c.cascade.map((s) => `${n(s.count)} ${s.type}`).join(', ')}`);
      if (c.examples.length) lines.push(`      e.g. ${c.examples.join(', ')}`);
    }
    lines.push('');
  } else {
    lines.push('Nothing is excluded.', '');
  }
  lines.push('Per type:');
  lines.push(
    ...table(
      ['type', 'included', 'excluded', 'pending', 'parked', 'deleted'],
      report.types.map((r) => [r.type, n(r.included), n(r.excluded), n(r.pending), n(r.parked), n(r.deleted)]),
      [1, 2, 3, 4, 5],
    ),
  );
  if (report.exclusions.length) {
    lines.push('', 'Exclusions per type and rule:');
    lines.push(
      ...table(
        ['type', 'rule', 'count', 'refers to', 'examples'],
        report.exclusions.map((e) => [e.type, e.rule, n(e.count), e.targets.map((x) => `${n(x.count)} ${x.type}`).join(', '), e.examples.join(', ')]),
        [2],
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

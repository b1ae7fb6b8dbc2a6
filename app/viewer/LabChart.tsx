/** A LOINC-coded Quantity Observation over time, as a plain SVG line chart with a table beside it for screen readers. */
import { useMemo, useState } from 'react';
import { sourceOrg, type ObservationEntry } from './api';

const LOINC = 'http://loinc.org';

interface Series {
  code: string;
  label: string;
  unit: string;
  points: { date: string; value: number; source?: string; id: string }[];
}

function seriesOf(observations: ObservationEntry[]): Series[] {
  const byCode = new Map<string, Series>();
  for (const o of observations) {
    if (!o) continue;
    const coding = o.code?.coding?.find((c) => c.system === LOINC);
    const value = o.valueQuantity?.value;
    const date = o.effectiveDateTime ?? o.issued;
    if (!coding?.code || typeof value !== 'number' || !date) continue;
    let s = byCode.get(coding.code);
    if (!s)
      byCode.set(
        coding.code,
        (s = { code: coding.code, label: o.code?.text ?? coding.display ?? coding.code, unit: o.valueQuantity?.unit ?? o.valueQuantity?.code ?? '', points: [] }),
      );
    s.points.push({ date, value, source: sourceOrg(o), id: o.id ?? '' });
  }
  for (const s of byCode.values()) s.points.sort((a, b) => a.date.localeCompare(b.date));
  return [...byCode.values()].sort((a, b) => b.points.length - a.points.length);
}

const W = 640;
const H = 240;
const PAD = { left: 56, right: 16, top: 16, bottom: 36 };

export function LabChart({ observations, orgs }: { observations: ObservationEntry[]; orgs: Map<string, string> }) {
  const series = useMemo(() => seriesOf(observations), [observations]);
  const [code, setCode] = useState<string | undefined>();
  const current = series.find((s) => s.code === code) ?? series[0];

  if (!current)
    return (
      <section className="card" aria-labelledby="chart-title">
        <h2 id="chart-title">Lab values</h2>
        <p className="muted">No LOINC-coded Observation with a quantity.</p>
      </section>
    );

  const times = current.points.map((p) => Date.parse(p.date));
  const values = current.points.map((p) => p.value);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  let [v0, v1] = [Math.min(...values), Math.max(...values)];
  if (v0 === v1) [v0, v1] = [v0 - 1, v1 + 1];
  const x = (t: number) => PAD.left + (t1 === t0 ? (W - PAD.left - PAD.right) / 2 : ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right));
  const y = (v: number) => PAD.top + (1 - (v - v0) / (v1 - v0)) * (H - PAD.top - PAD.bottom);
  const path = current.points.map((p, i) => `${i ? 'L' : 'M'}${x(Date.parse(p.date)).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  const ticks = [v0, (v0 + v1) / 2, v1];

  return (
    <section className="card chart" aria-labelledby="chart-title">
      <h2 id="chart-title">Lab values</h2>
      <label htmlFor="chart-code">Observation</label>{' '}
      <select id="chart-code" value={current.code} onChange={(e) => setCode(e.target.value)}>
        {series.map((s) => (
          <option key={s.code} value={s.code}>
            {s.label} ({s.code}) — {s.points.length}
          </option>
        ))}
      </select>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="chart-desc" className="plot">
        <desc id="chart-desc">
          {current.label} over time: {current.points.length} value{current.points.length === 1 ? '' : 's'}, from {current.points[0].date.slice(0, 10)} to{' '}
          {current.points[current.points.length - 1].date.slice(0, 10)}
        </desc>
        {ticks.map((v) => (
          <g key={v}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} className="grid" />
            <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end" className="axis">
              {Number(v.toPrecision(4))}
            </text>
          </g>
        ))}
        <text x={PAD.left} y={H - 10} className="axis">
          {new Date(t0).toISOString().slice(0, 10)}
        </text>
        <text x={W - PAD.right} y={H - 10} textAnchor="end" className="axis">
          {new Date(t1).toISOString().slice(0, 10)}
        </text>
        <path d={path} className="line" />
        {current.points.map((p) => (
          <circle key={p.id} cx={x(Date.parse(p.date))} cy={y(p.value)} r={4} className="point">
            <title>
              {p.date.slice(0, 10)}: {p.value} {current.unit}
            </title>
          </circle>
        ))}
      </svg>
      <details>
        <summary>Values as a table</summary>
        <table className="values">
          <caption className="visually-hidden">{current.label} values</caption>
          <thead>
            <tr>
              <th scope="col">Date</th>
              <th scope="col">Value</th>
              <th scope="col">Source</th>
            </tr>
          </thead>
          <tbody>
            {current.points.map((p) => (
              <tr key={p.id}>
                <td>{p.date.slice(0, 10)}</td>
                <td>
                  {Number(p.value.toFixed(2))} {current.unit}
                </td>
                <td>{p.source ? (orgs.get(p.source) ?? p.source) : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  );
}

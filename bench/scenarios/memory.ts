import { ratio } from '../lib/stats';
import { type BenchContext, report } from './context';

/**
 * memory: the server's peak resident set size (VmHWM from /proc/<pid>/status). The runner resets the
 * high-water mark before each scenario and reports the peak after it (`memory.<scenario>`); this scenario
 * adds the idle figure and the peak over the whole run. Floor: the RSS of the freshly started, idle server.
 * Targets (issue 19): idle ≤ 300 MB, peak ≤ 700 MB.
 */
export function memoryFigure(ctx: BenchContext, scenario: string, peakMb: number | null): void {
  report(ctx, {
    id: `memory.${scenario}`,
    scenario: 'memory',
    metric: `server peak RSS during ${scenario} (floor: idle after start)`,
    value: peakMb,
    unit: 'MB',
    floor: ctx.idleRssMb,
    ratio: ratio(peakMb, ctx.idleRssMb),
  });
}

export async function memoryScenario(ctx: BenchContext): Promise<void> {
  const peaks = ctx.figures.filter((f) => f.id.startsWith('memory.') && typeof f.value === 'number').map((f) => f.value as number);
  const peak = peaks.length ? Math.max(...peaks) : ctx.server.peakRssMb();
  report(ctx, {
    id: 'memory.idle',
    scenario: 'memory',
    metric: 'server idle RSS after start, before any load (the start scenario adds fresh processes)',
    value: ctx.idleRssMb,
    unit: 'MB',
    target: '≤ 300 MB',
  });
  report(ctx, {
    id: 'memory.run',
    scenario: 'memory',
    metric: 'server peak RSS over the run (floor: idle after start)',
    value: peak,
    unit: 'MB',
    floor: ctx.idleRssMb,
    ratio: ratio(peak, ctx.idleRssMb),
    target: '≤ 700 MB',
  });
}

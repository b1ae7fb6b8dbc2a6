import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of processes on this machine from /proc, for figures that do not depend on who else runs (issue 19
 * item 1: on a shared host wall-clock rates say little, CPU per resource does).
 */
export const TICK_US = 1e6 / 100; // USER_HZ: /proc reports CPU time in 1/100 s.

/** utime + stime of a process (all its threads), with what it reaped from its children when `withReaped`; 0 if gone. */
export function statTicks(pid: number, withReaped: boolean): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // Fields 14–17 of stat (utime, stime, cutime, cstime) are 11–14 after the name.
    return Number(f[11]) + Number(f[12]) + (withReaped ? Number(f[13]) + Number(f[14]) : 0);
  } catch {
    return 0;
  }
}

/** CPU ticks of a process tree's root and its direct children, plus what it reaped (a PostgreSQL cluster from its postmaster). */
export function clusterTicks(postmaster: number): number {
  let ticks = statTicks(postmaster, true);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) ticks += statTicks(Number(name), false);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}

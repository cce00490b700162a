/**
 * CPU seconds of other processes (the NATS servers), read from /proc/<pid>/stat: the replicated
 * puts cost CPU there too, and a per-CPU-second figure that left it out would flatter them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

const ticksPerSecond = clockTicksPerSecond();

/**
 * User + system CPU seconds of process `pid` so far, or NaN if it cannot be read (not Linux, or the
 * process is gone). The command name in field 2 may hold spaces and parentheses, so the fields are
 * counted from the last ')'.
 */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return Number.NaN;
  }
}

/** The summed CPU seconds of `pids`; NaN if any cannot be read. */
export function processesCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
}

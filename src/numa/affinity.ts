import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseCpuList, type Topology } from './topology.js';

/**
 * Where one thread ended up: the CPUs the kernel lets it run on after the attempt, and whether that is
 * the pinning that was asked for. `reason` says why not, so `stats()` can report it instead of hiding it.
 */
export interface ThreadPlacement {
  /** Cpulist syntax ("0-3,8"): the thread's mask read back from the kernel, else the CPUs asked for. */
  cpus: string;
  /** True when the kernel confirmed the thread's mask is exactly the CPUs asked for. */
  pinned: boolean;
  /** Why the thread is not pinned; absent when it is. */
  reason?: string;
}

export interface PinThreadOptions {
  /** The program that sets a thread's mask. Default 'taskset' (util-linux); tests name a missing one. */
  command?: string;
  /** Where procfs is mounted. Default '/proc'. */
  procRoot?: string;
  /** Longest the command may run before the attempt counts as failed. Default 2000 ms. */
  timeoutMs?: number;
  /** The operating system. Default `process.platform`; tests pass another to see the fallback. */
  platform?: NodeJS.Platform;
}

const commandDefault = 'taskset';
const timeoutMsDefault = 2000;
const threadLinkPattern = /^(\d+)\/task\/(\d+)$/;
const cpusAllowedPattern = /^Cpus_allowed_list:[ \t]*(.*)$/m;

/** The `pinWorkers` open option: pin always, never, or only where it can matter ('auto'). */
export type PinWorkersMode = boolean | 'auto';

/** Whether owners should pin themselves, decided once per open; `reason` is reported when they do not. */
export type PinningDecision = { pin: true } | { pin: false; reason: string };

/**
 * 'auto' pins only on a machine with more than one NUMA node (as sysfs tells it). On one node the plan
 * gives every worker all of the node's CPUs, which is the mask it already has: pinning would change
 * nothing and cost a process spawn per worker at open. `true` pins anyway (a no-op mask there, but
 * it exercises the path); `false` never pins, for machines where an external cpuset manages threads.
 */
export function decidePinning(mode: PinWorkersMode, topology: Topology): PinningDecision {
  if (mode === false) return { pin: false, reason: 'pinWorkers is false' };
  if (mode === true) return { pin: true };
  if (topology.source !== 'sysfs') {
    return { pin: false, reason: 'no NUMA topology in sysfs, so no node to pin to' };
  }
  if (topology.nodes.length < 2) {
    return { pin: false, reason: 'one NUMA node: the worker already runs on all of its CPUs' };
  }
  return { pin: true };
}

/**
 * Places the calling thread as decided: pins it to `cpus`, or leaves it and reports the mask it has.
 * Never throws for an environment that cannot pin (see `pinCurrentThread`).
 */
export function placeCurrentThread(
  cpus: readonly number[],
  decision: PinningDecision,
  options: PinThreadOptions = {},
): ThreadPlacement {
  if (decision.pin) return pinCurrentThread(cpus, options);
  const current = readThreadCpuList(options.procRoot ?? '/proc');
  return { cpus: current ?? formatCpuList(validateCpus(cpus)), pinned: false, reason: decision.reason };
}

/**
 * Pins the calling thread (the main thread or a worker thread) to `cpus`, Linux only, without a native
 * addon: the thread's kernel id is the last component of `/proc/thread-self`, and `taskset -p -c` sets
 * that one thread's mask (sched_setaffinity on a tid touches no other thread of the process). Memory
 * the thread first touches afterwards is then allocated on its node under the default NUMA policy.
 *
 * Never throws for an environment that cannot pin (another OS, no procfs, no taskset, EPERM under a
 * seccomp or cpuset policy, a hung command): the thread keeps running where it was, and the result
 * says why. Blocks the calling thread for one process spawn (a few milliseconds); call it once, at start.
 */
export function pinCurrentThread(cpus: readonly number[], options: PinThreadOptions = {}): ThreadPlacement {
  const wanted = validateCpus(cpus);
  const wantedList = formatCpuList(wanted);
  const procRoot = options.procRoot ?? '/proc';
  const platform = options.platform ?? process.platform;
  const fallback = (reason: string): ThreadPlacement => ({
    cpus: readThreadCpuList(procRoot) ?? wantedList,
    pinned: false,
    reason,
  });
  if (platform !== 'linux') return fallback(`thread pinning needs Linux; this is ${platform}`);
  const tid = currentThreadId(procRoot);
  if (tid === undefined)
    return fallback(`cannot find this thread's id: ${procRoot}/thread-self is unreadable`);
  const command = options.command ?? commandDefault;
  try {
    execFileSync(command, ['-p', '-c', wantedList, String(tid)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: options.timeoutMs ?? timeoutMsDefault,
    });
  } catch (error) {
    return fallback(describeCommandFailure(command, error));
  }
  const achieved = readThreadCpuList(procRoot);
  if (achieved === undefined) {
    return {
      cpus: wantedList,
      pinned: false,
      reason: `${command} ran, but the thread's mask cannot be read back`,
    };
  }
  if (formatCpuList(parseCpuList(achieved)) !== wantedList) {
    return {
      cpus: achieved,
      pinned: false,
      reason: `asked for CPUs ${wantedList}, the kernel kept ${achieved}`,
    };
  }
  return { cpus: achieved, pinned: true };
}

/**
 * The calling thread's kernel thread id, from the `<pid>/task/<tid>` that `/proc/thread-self` links to;
 * undefined where that link does not exist (non-Linux, kernels before 3.17, no procfs).
 */
export function currentThreadId(procRoot = '/proc'): number | undefined {
  let target: string;
  try {
    target = readlinkSync(join(procRoot, 'thread-self'));
  } catch {
    return undefined;
  }
  const match = threadLinkPattern.exec(target);
  return match === null ? undefined : Number(match[2]);
}

/** The calling thread's `Cpus_allowed_list` as the kernel writes it, or undefined where it cannot be read. */
export function readThreadCpuList(procRoot = '/proc'): string | undefined {
  let status: string;
  try {
    status = readFileSync(join(procRoot, 'thread-self/status'), 'utf8');
  } catch {
    return undefined;
  }
  const match = cpusAllowedPattern.exec(status);
  return match === null ? undefined : match[1]!.trim();
}

/** Writes CPU ids in the kernel's cpulist syntax, runs collapsed: [0, 1, 2, 3, 8] → "0-3,8". */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const items: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    items.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return items.join(',');
}

function validateCpus(cpus: readonly number[]): number[] {
  if (!Array.isArray(cpus) || cpus.length === 0) {
    throw new TypeError('pinCurrentThread needs a non-empty array of CPU ids');
  }
  for (const cpu of cpus) {
    if (!Number.isSafeInteger(cpu) || cpu < 0) throw new TypeError(`not a CPU id: ${String(cpu)}`);
  }
  return [...new Set(cpus)].sort((a, b) => a - b);
}

/** One line for stats(): which command, and the errno, exit status, timeout or stderr it ended with. */
function describeCommandFailure(command: string, error: unknown): string {
  const failure = error as NodeJS.ErrnoException & {
    status?: number | null;
    signal?: string | null;
    stderr?: Buffer;
  };
  if (failure.code === 'ENOENT') return `${command} is not installed (util-linux); install it to pin workers`;
  if (failure.code === 'ETIMEDOUT' || failure.signal === 'SIGTERM')
    return `${command} did not finish in time`;
  if (typeof failure.code === 'string') return `${command} could not run: ${failure.code}`;
  const stderr = failure.stderr?.toString('utf8').trim().split('\n').pop();
  const status = failure.status ?? failure.signal ?? 'unknown';
  return `${command} failed (exit ${status})${stderr ? `: ${stderr}` : ''}`;
}

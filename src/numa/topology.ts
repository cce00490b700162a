import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** One NUMA node and the CPUs this process may run on there, ascending. */
export interface TopologyNode {
  id: number;
  cpus: number[];
}

/**
 * The machine as the planner sees it. `source` says whether the nodes came from Linux sysfs or from the
 * portable fallback (one node of `os.availableParallelism()` CPUs), so callers can report which it was.
 */
export interface Topology {
  source: 'sysfs' | 'fallback';
  nodes: TopologyNode[];
}

export interface ReadTopologyOptions {
  /** Where sysfs is mounted. Tests point it at a fake tree in a temp dir. Default '/sys'. */
  sysfsRoot?: string;
  /**
   * Where procfs is mounted; `<procRoot>/self/status` gives the CPUs this process may run on. Tests that
   * fake sysfs should point it at a temp dir too, or the real machine's affinity mask is applied to the
   * fake CPUs. Default '/proc'.
   */
  procRoot?: string;
}

/**
 * Highest CPU id a cpulist may name. Linux builds with at most 8192 CPUs (CONFIG_NR_CPUS); the limit
 * is higher so no real machine trips it, and finite so "0-4294967295" cannot allocate gigabytes.
 */
export const cpuIdMax = 65535;

const cpuListItemPattern = /^(\d+)(?:-(\d+))?$/;
const nodeDirPattern = /^node(\d+)$/;
const cpusAllowedPattern = /^Cpus_allowed_list:[ \t]*(.*)$/m;

/**
 * Parses the kernel's cpulist syntax ("0-3,8-11", "0", "" or whitespace for none, a trailing newline
 * as sysfs writes it) into CPU ids, ascending and unique. O(number of CPUs named).
 *
 * Throws a `SyntaxError` on malformed text ("3-1", "a", "1--2", "1,,2", an id above `cpuIdMax`): a
 * list that cannot be read must not quietly become a smaller machine.
 */
export function parseCpuList(text: string): number[] {
  if (typeof text !== 'string') throw new TypeError(`cpulist must be a string, got ${typeof text}`);
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const cpus = new Set<number>();
  for (const rawItem of trimmed.split(',')) {
    const item = rawItem.trim();
    const match = cpuListItemPattern.exec(item);
    if (match === null) {
      throw new SyntaxError(`malformed cpulist ${JSON.stringify(text)}: bad item "${item}"`);
    }
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last > cpuIdMax) {
      throw new SyntaxError(`malformed cpulist ${JSON.stringify(text)}: CPU id ${last} is above ${cpuIdMax}`);
    }
    if (first > last) {
      throw new SyntaxError(`malformed cpulist ${JSON.stringify(text)}: range "${item}" runs backwards`);
    }
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/**
 * Reads the NUMA nodes and the CPUs this process may use on each, from
 * `<sysfsRoot>/devices/system/node/node<N>/cpulist`, keeping only CPUs that are online
 * (`devices/system/cpu/online`) and in the process's affinity mask (`Cpus_allowed_list` in
 * `<procRoot>/self/status`), each when present. Nodes left without CPUs, such as memory-only nodes,
 * are dropped. Nodes come back sorted by id.
 *
 * Falls back to one node with `os.availableParallelism()` CPUs (ids 0..n-1) when sysfs is missing or
 * unreadable, or names no usable CPU: that is the normal case off Linux. A cpulist that exists but
 * cannot be parsed is an environment failure and throws an Error naming the file.
 */
export function readTopology(options: ReadTopologyOptions = {}): Topology {
  const sysfsRoot = options.sysfsRoot ?? '/sys';
  const procRoot = options.procRoot ?? '/proc';
  const nodes = readSysfsNodes(sysfsRoot);
  if (nodes === undefined) return fallbackTopology();

  // Offline CPUs still appear in node cpulists; a worker pinned to one would never run.
  const online = readOptionalCpuList(join(sysfsRoot, 'devices/system/cpu/online'));
  // In a container with a cpuset, sysfs shows every CPU of the host; planning one worker per host CPU
  // would start far more threads than the process may run at once.
  const allowed = readAllowedCpus(join(procRoot, 'self/status'));
  const usable = nodes
    .map((node) => ({ id: node.id, cpus: node.cpus.filter((cpu) => isUsable(cpu, online, allowed)) }))
    .filter((node) => node.cpus.length > 0);
  if (usable.length === 0) return fallbackTopology();
  return { source: 'sysfs', nodes: usable };
}

function isUsable(cpu: number, online: Set<number> | undefined, allowed: Set<number> | undefined): boolean {
  return (online === undefined || online.has(cpu)) && (allowed === undefined || allowed.has(cpu));
}

/** The portable answer: one node holding every CPU the runtime says this process may use. */
function fallbackTopology(): Topology {
  const cpuCount = Math.max(1, availableParallelism());
  return { source: 'fallback', nodes: [{ id: 0, cpus: Array.from({ length: cpuCount }, (_, cpu) => cpu) }] };
}

/**
 * The nodes sysfs lists, sorted by id, or undefined when sysfs cannot be read. A partly readable tree
 * also yields undefined: a topology missing a node would pin workers to the wrong CPUs.
 */
function readSysfsNodes(sysfsRoot: string): TopologyNode[] | undefined {
  const nodeRoot = join(sysfsRoot, 'devices/system/node');
  let entries: string[];
  try {
    entries = readdirSync(nodeRoot);
  } catch (error) {
    if (isFsError(error)) return undefined;
    throw error;
  }
  const nodes: TopologyNode[] = [];
  for (const entry of entries) {
    const match = nodeDirPattern.exec(entry);
    if (match === null) continue;
    const path = join(nodeRoot, entry, 'cpulist');
    const text = readTextOrUndefined(path);
    if (text === undefined) return undefined;
    nodes.push({ id: Number(match[1]), cpus: parseCpuListAt(path, text) });
  }
  if (nodes.length === 0) return undefined;
  return nodes.sort((a, b) => a.id - b.id);
}

function readOptionalCpuList(path: string): Set<number> | undefined {
  const text = readTextOrUndefined(path);
  return text === undefined ? undefined : new Set(parseCpuListAt(path, text));
}

function readAllowedCpus(statusPath: string): Set<number> | undefined {
  const text = readTextOrUndefined(statusPath);
  if (text === undefined) return undefined;
  const match = cpusAllowedPattern.exec(text);
  // Kernels before 2.6.26 and non-Linux procfs lack the line; no mask then means no restriction.
  if (match === null) return undefined;
  return new Set(parseCpuListAt(statusPath, match[1]!));
}

function parseCpuListAt(path: string, text: string): number[] {
  try {
    return parseCpuList(text);
  } catch (error) {
    throw new Error(`cannot read the CPU topology: ${path} is not a valid cpulist`, { cause: error });
  }
}

function readTextOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (isFsError(error)) return undefined;
    throw error;
  }
}

/** A failed system call (ENOENT, EACCES, ENOTDIR...), as opposed to a bug, which must propagate. */
function isFsError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

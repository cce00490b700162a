import { cpuIdMax, type Topology, type TopologyNode } from './topology.js';

/**
 * Raised for options the planner cannot accept. `src/numa` imports nothing from the rest of the engine,
 * so it cannot raise a `LightningError` itself; the public API maps this one to the same code.
 */
export class NumaPlanError extends Error {
  readonly code: 'ERR_BAD_ARGUMENT' = 'ERR_BAD_ARGUMENT';

  constructor(message: string) {
    super(message);
    this.name = 'NumaPlanError';
  }
}

/**
 * Most partitions a plan accepts. Each partition is its own SharedArrayBuffer and WAL, so real databases
 * stay far below this; the limit keeps a mistyped count from building a plan of millions of entries.
 */
export const partitionsMax = 65536;

export interface PlanWorkersOptions {
  /** How many partition-owner workers to start, or 'auto' (the default): one per CPU. */
  workers?: number | 'auto';
  /** With `workers: 'auto'`, start this many workers on every node instead of one per CPU. */
  workersPerNode?: number;
  /** The database's partition count, fixed at creation. */
  partitions: number;
}

export interface PlannedWorker {
  /** 0..W-1, in node order: the workers of a node have consecutive indexes. */
  index: number;
  /** The NUMA node id the worker belongs to. */
  node: number;
  /** The CPUs to pin the worker to: all of its node's CPUs, shared with the node's other workers. */
  cpus: number[];
  /** The partitions the worker owns, ascending. */
  partitions: number[];
}

/** A plan is plain data, so it can be logged, compared in tests and sent to workers as-is. */
export interface WorkerPlan {
  workers: PlannedWorker[];
  /** How many nodes host at least one worker. */
  nodes: number;
  /** Human-readable remarks on choices the caller may not expect (capping, shared CPUs, idle nodes). */
  notes: string[];
}

interface ValidOptions {
  workers: number | 'auto';
  workersPerNode: number | undefined;
  partitions: number;
}

/**
 * Decides how many partition-owner workers to start, where each runs and which partitions it owns.
 *
 * - `workers: 'auto'` starts one worker per CPU, or `workersPerNode` on every node when that is given.
 * - An explicit worker count is spread over the nodes in proportion to their CPU counts (largest
 *   remainder; larger nodes first on ties), so each node gets the floor or ceiling of its share.
 * - More workers than partitions are capped at the partition count, with a note: a worker without a
 *   partition would only cost a thread.
 * - Partitions 0..P-1 go to nodes in contiguous blocks proportional to each node's workers, then
 *   round-robin to the workers of the node, so every worker owns floor(P/W) or ceil(P/W) partitions.
 *   Owners first-touch their partitions' memory, so a node's partitions land in its own memory.
 *
 * O(P + CPUs + nodes log nodes). Throws `NumaPlanError` (code ERR_BAD_ARGUMENT) for bad options or a
 * topology without CPUs.
 */
export function planWorkers(topology: Topology, options: PlanWorkersOptions): WorkerPlan {
  const nodes = validateTopology(topology);
  const { workers, workersPerNode, partitions } = validateOptions(options);
  const notes: string[] = [];

  const cpuCounts = nodes.map((node) => node.cpus.length);
  const cpuTotal = cpuCounts.reduce((sum, count) => sum + count, 0);
  let workerTotal = workers;
  if (workerTotal === 'auto') {
    workerTotal = workersPerNode === undefined ? cpuTotal : workersPerNode * nodes.length;
  }
  if (workerTotal > partitions) {
    notes.push(
      `${workerTotal} workers capped at ${partitions}, the partition count: a worker without a partition would sit idle`,
    );
    workerTotal = partitions;
  }

  // workersPerNode asks for the same number on every node; otherwise a node's share follows its CPUs.
  const nodeWeights = workersPerNode === undefined ? cpuCounts : nodes.map(() => 1);
  const workerCounts = apportion(workerTotal, nodeWeights, cpuCounts);
  const partitionCounts = apportion(partitions, workerCounts, cpuCounts);

  const planned: PlannedWorker[] = [];
  let blockStart = 0;
  nodes.forEach((node, n) => {
    const workerCount = workerCounts[n]!;
    const blockEnd = blockStart + partitionCounts[n]!;
    for (let w = 0; w < workerCount; w++) {
      const owned: number[] = [];
      for (let partition = blockStart + w; partition < blockEnd; partition += workerCount) {
        owned.push(partition);
      }
      planned.push({ index: planned.length, node: node.id, cpus: [...node.cpus], partitions: owned });
    }
    if (workerCount > node.cpus.length) {
      notes.push(`node ${node.id}: ${workerCount} workers share ${node.cpus.length} CPUs`);
    }
    blockStart = blockEnd;
  });

  const idleNodes = nodes.filter((_, n) => workerCounts[n] === 0).map((node) => node.id);
  if (idleNodes.length > 0) {
    notes.push(`no worker on node ${idleNodes.join(', ')}: ${workerTotal} workers for ${nodes.length} nodes`);
  }

  checkPlan(planned, workerTotal, partitions);
  return { workers: planned, nodes: nodes.length - idleNodes.length, notes };
}

/**
 * Splits `total` units over items in proportion to `weights` by the largest-remainder method: each item
 * gets the floor of its exact share, and the units left go to the largest remainders, ties to the
 * larger `tieBreak`, then to the lower index. Integer arithmetic only, so the result is deterministic.
 * Each share is the floor or the ceiling of its exact share, and an item of weight 0 gets nothing.
 */
function apportion(total: number, weights: readonly number[], tieBreak: readonly number[]): number[] {
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0);
  assert(weightSum > 0, 'apportion needs a positive weight');
  const remainders = weights.map((weight) => (total * weight) % weightSum);
  const shares = weights.map((weight, i) => (total * weight - remainders[i]!) / weightSum);
  let left = total - shares.reduce((sum, share) => sum + share, 0);
  const order = weights.map((_, i) => i);
  order.sort((a, b) => remainders[b]! - remainders[a]! || tieBreak[b]! - tieBreak[a]! || a - b);
  for (const i of order) {
    if (left === 0) break;
    shares[i]!++;
    left--;
  }
  assert(left === 0, `apportion left ${left} of ${total} units unassigned`);
  return shares;
}

/** Returns the nodes that have CPUs, sorted by id, each with its CPUs sorted and unique. */
function validateTopology(topology: Topology): TopologyNode[] {
  if (typeof topology !== 'object' || topology === null || !Array.isArray(topology.nodes)) {
    throw new NumaPlanError(`topology must be an object with a nodes array, got ${describe(topology)}`);
  }
  const seenIds = new Set<number>();
  const nodes: TopologyNode[] = [];
  for (const node of topology.nodes) {
    if (typeof node !== 'object' || node === null || !isCount(node.id, 0) || !Array.isArray(node.cpus)) {
      throw new NumaPlanError(`topology node must be { id, cpus } with a non-negative integer id`);
    }
    if (seenIds.has(node.id)) throw new NumaPlanError(`topology lists node ${node.id} twice`);
    seenIds.add(node.id);
    for (const cpu of node.cpus) {
      if (!isCount(cpu, 0) || cpu > cpuIdMax) {
        throw new NumaPlanError(
          `node ${node.id}: CPU ids must be integers in 0..${cpuIdMax}, got ${describe(cpu)}`,
        );
      }
    }
    // A node without CPUs (memory only) cannot run a worker.
    if (node.cpus.length > 0)
      nodes.push({ id: node.id, cpus: [...new Set(node.cpus)].sort((a, b) => a - b) });
  }
  if (nodes.length === 0) throw new NumaPlanError('topology has no node with a CPU');
  return nodes.sort((a, b) => a.id - b.id);
}

function validateOptions(options: PlanWorkersOptions): ValidOptions {
  if (typeof options !== 'object' || options === null) {
    throw new NumaPlanError(`options must be an object, got ${describe(options)}`);
  }
  const { workers = 'auto', workersPerNode, partitions } = options;
  if (!isCount(partitions, 1) || partitions > partitionsMax) {
    throw new NumaPlanError(
      `partitions must be an integer in 1..${partitionsMax}, got ${describe(partitions)}`,
    );
  }
  if (workers !== 'auto' && !isCount(workers, 1)) {
    throw new NumaPlanError(`workers must be a positive integer or 'auto', got ${describe(workers)}`);
  }
  if (workersPerNode !== undefined && !isCount(workersPerNode, 1)) {
    throw new NumaPlanError(`workersPerNode must be a positive integer, got ${describe(workersPerNode)}`);
  }
  if (workersPerNode !== undefined && workers !== 'auto') {
    throw new NumaPlanError(
      `workers (${workers}) and workersPerNode (${workersPerNode}) conflict: give one, or set workers to 'auto'`,
    );
  }
  return { workers, workersPerNode, partitions };
}

function isCount(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  return value === null ? 'null' : typeof value;
}

/**
 * Checks what every caller relies on, in a second place from the code that builds it: W workers, each
 * partition owned exactly once, and per-worker counts within one of each other.
 */
function checkPlan(workers: readonly PlannedWorker[], workerTotal: number, partitions: number): void {
  assert(workers.length === workerTotal, `planned ${workers.length} workers, wanted ${workerTotal}`);
  const owners = new Int32Array(partitions).fill(-1);
  for (const worker of workers) {
    for (const partition of worker.partitions) {
      assert(partition >= 0 && partition < partitions, `partition ${partition} out of range`);
      assert(owners[partition] === -1, `partition ${partition} owned twice`);
      owners[partition] = worker.index;
    }
  }
  assert(!owners.includes(-1), 'a partition has no owner');
  const floor = Math.floor(partitions / workerTotal);
  for (const worker of workers) {
    const count = worker.partitions.length;
    assert(count === floor || count === floor + 1, `worker ${worker.index} owns ${count} partitions`);
  }
}

/** A failed assertion here is a bug in the planner, never a caller's mistake. */
function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`numa planner assertion failed: ${message}`);
}

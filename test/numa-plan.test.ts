/**
 * The topology reader against fake sysfs trees built in temp dirs, and the worker planner against fake
 * topologies: every partition owned exactly once, per-worker counts within one, workers spread over
 * nodes in proportion to their CPUs, and bad options rejected with ERR_BAD_ARGUMENT.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  NumaPlanError,
  type PlanWorkersOptions,
  parseCpuList,
  partitionsMax,
  planWorkers,
  readTopology,
  type Topology,
  type WorkerPlan,
} from '../src/numa/index.js';

interface FakeMachine {
  /** Node directory name ("node0") to the text of its cpulist file; undefined leaves the file out. */
  nodes: Record<string, string | undefined>;
  /** Text of devices/system/cpu/online; left out when undefined. */
  online?: string;
  /** Cpus_allowed_list of proc/self/status; the status file is left out when undefined. */
  allowed?: string;
}

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lightning-numa-'));
  tempDirs.push(dir);
  return dir;
}

/** Builds a fake sysfs and procfs; readTopology reads only these, never the real machine's. */
function fakeMachine(machine: FakeMachine): { sysfsRoot: string; procRoot: string } {
  const root = makeTempDir();
  const sysfsRoot = join(root, 'sys');
  const procRoot = join(root, 'proc');
  const nodeRoot = join(sysfsRoot, 'devices/system/node');
  mkdirSync(nodeRoot, { recursive: true });
  mkdirSync(join(procRoot, 'self'), { recursive: true });
  // The real directory also holds these files; the reader must skip them.
  writeFileSync(join(nodeRoot, 'possible'), '0-1\n');
  writeFileSync(join(nodeRoot, 'has_cpu'), '0-1\n');
  for (const [name, cpulist] of Object.entries(machine.nodes)) {
    mkdirSync(join(nodeRoot, name));
    if (cpulist !== undefined) writeFileSync(join(nodeRoot, name, 'cpulist'), cpulist);
  }
  if (machine.online !== undefined) {
    mkdirSync(join(sysfsRoot, 'devices/system/cpu'), { recursive: true });
    writeFileSync(join(sysfsRoot, 'devices/system/cpu/online'), machine.online);
  }
  if (machine.allowed !== undefined) {
    writeFileSync(
      join(procRoot, 'self/status'),
      `Name:\tnode\nCpus_allowed:\tff\nCpus_allowed_list:\t${machine.allowed}\nMems_allowed_list:\t0\n`,
    );
  }
  return { sysfsRoot, procRoot };
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function topologyOf(...cpuCounts: number[]): Topology {
  let nextCpu = 0;
  const nodes = cpuCounts.map((count, id) => {
    const cpus = range(nextCpu, nextCpu + count - 1);
    nextCpu += count;
    return { id, cpus };
  });
  return { source: 'sysfs', nodes };
}

function workersPerNodeOf(plan: WorkerPlan, topology: Topology): number[] {
  return topology.nodes.map((node) => plan.workers.filter((worker) => worker.node === node.id).length);
}

/** The invariants every plan must hold, whatever the options. */
function expectValidPlan(plan: WorkerPlan, topology: Topology, partitions: number): void {
  const workerCount = plan.workers.length;
  expect(workerCount).toBeGreaterThanOrEqual(1);
  expect(workerCount).toBeLessThanOrEqual(partitions);
  expect(plan.workers.map((worker) => worker.index)).toEqual(range(0, workerCount - 1));

  const owned = plan.workers.flatMap((worker) => worker.partitions).sort((a, b) => a - b);
  expect(owned).toEqual(range(0, partitions - 1));

  const counts = plan.workers.map((worker) => worker.partitions.length);
  expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  expect(Math.min(...counts)).toBe(Math.floor(partitions / workerCount));

  let previousNode = -1;
  for (const worker of plan.workers) {
    const node = topology.nodes.find((candidate) => candidate.id === worker.node);
    expect(node).toBeDefined();
    expect(worker.cpus).toEqual(node!.cpus);
    expect(worker.partitions).toEqual([...worker.partitions].sort((a, b) => a - b));
    // Workers come in node order, so a node's workers have consecutive indexes.
    expect(worker.node).toBeGreaterThanOrEqual(previousNode);
    previousNode = worker.node;
  }
  expect(plan.nodes).toBe(new Set(plan.workers.map((worker) => worker.node)).size);
  expectNodeByNodePartitions(plan);
}

/**
 * Partitions are assigned node by node: each node's workers together own one contiguous block, and the
 * blocks follow node order, so a node's partitions (first-touched by its owners) sit in its memory.
 */
function expectNodeByNodePartitions(plan: WorkerPlan): void {
  let nextPartition = 0;
  for (const node of [...new Set(plan.workers.map((worker) => worker.node))]) {
    const block = plan.workers
      .filter((worker) => worker.node === node)
      .flatMap((worker) => worker.partitions)
      .sort((a, b) => a - b);
    expect(block, `node ${node}`).toEqual(range(nextPartition, nextPartition + block.length - 1));
    nextPartition += block.length;
  }
}

function expectBadArgument(run: () => unknown, messagePart: string): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(NumaPlanError);
    expect((error as NumaPlanError).code).toBe('ERR_BAD_ARGUMENT');
    expect((error as NumaPlanError).message).toContain(messagePart);
    return;
  }
  expect.fail(`expected a NumaPlanError mentioning ${messagePart}`);
}

describe('parseCpuList', () => {
  it('reads single ids, ranges, empty lists and the trailing newline sysfs writes', () => {
    expect(parseCpuList('0')).toEqual([0]);
    expect(parseCpuList('0-3,8-11\n')).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    expect(parseCpuList(' 5, 1-2 ,7 ')).toEqual([1, 2, 5, 7]);
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList('\n')).toEqual([]);
    expect(parseCpuList('4-4')).toEqual([4]);
  });

  it('sorts and removes duplicates', () => {
    expect(parseCpuList('8-9,0-2,1,9')).toEqual([0, 1, 2, 8, 9]);
  });

  it.each(['3-1', 'a', '1--2', '1,,2', '1,', '-1', '0-', '1 2', '0-3:2/4', '0x1', '99999999'])(
    'rejects the malformed list %j',
    (text) => {
      expect(() => parseCpuList(text)).toThrow(SyntaxError);
    },
  );
});

describe('readTopology', () => {
  it('reads one node with 2 CPUs', () => {
    const roots = fakeMachine({ nodes: { node0: '0-1\n' }, online: '0-1\n', allowed: '0-1' });
    expect(readTopology(roots)).toEqual({ source: 'sysfs', nodes: [{ id: 0, cpus: [0, 1] }] });
  });

  it('reads two sockets of 8 CPUs', () => {
    const roots = fakeMachine({ nodes: { node0: '0-7\n', node1: '8-15\n' }, online: '0-15\n' });
    expect(readTopology(roots)).toEqual({
      source: 'sysfs',
      nodes: [
        { id: 0, cpus: range(0, 7) },
        { id: 1, cpus: range(8, 15) },
      ],
    });
  });

  it('reads uneven nodes', () => {
    const roots = fakeMachine({ nodes: { node0: '0-5\n', node1: '6-7\n' } });
    expect(readTopology(roots).nodes).toEqual([
      { id: 0, cpus: range(0, 5) },
      { id: 1, cpus: [6, 7] },
    ]);
  });

  it('sorts nodes by numeric id', () => {
    const roots = fakeMachine({ nodes: { node10: '2\n', node2: '1\n', node0: '0\n' } });
    expect(readTopology(roots).nodes.map((node) => node.id)).toEqual([0, 2, 10]);
  });

  it('leaves out offline CPUs', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n', node1: '4-7\n' }, online: '0-2,4-7\n' });
    expect(readTopology(roots).nodes).toEqual([
      { id: 0, cpus: [0, 1, 2] },
      { id: 1, cpus: range(4, 7) },
    ]);
  });

  it('drops a node whose CPUs are all offline', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n', node1: '4-7\n' }, online: '0-3\n' });
    expect(readTopology(roots).nodes).toEqual([{ id: 0, cpus: range(0, 3) }]);
  });

  it('leaves out CPUs outside the process affinity mask', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n', node1: '4-7\n' }, allowed: '2-5' });
    expect(readTopology(roots).nodes).toEqual([
      { id: 0, cpus: [2, 3] },
      { id: 1, cpus: [4, 5] },
    ]);
  });

  it('drops a memory-only node with an empty cpulist', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n', node1: '\n', node2: '4-7\n' } });
    expect(readTopology(roots)).toEqual({
      source: 'sysfs',
      nodes: [
        { id: 0, cpus: range(0, 3) },
        { id: 2, cpus: range(4, 7) },
      ],
    });
  });

  it('falls back to one node of availableParallelism() CPUs when sysfs is missing', () => {
    const empty = makeTempDir();
    const topology = readTopology({ sysfsRoot: empty, procRoot: empty });
    expect(topology).toEqual({
      source: 'fallback',
      nodes: [{ id: 0, cpus: range(0, availableParallelism() - 1) }],
    });
  });

  it('falls back when a node has no readable cpulist', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n', node1: undefined } });
    expect(readTopology(roots).source).toBe('fallback');
  });

  it('falls back when no CPU is left online', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n' }, online: '8-9\n' });
    expect(readTopology(roots).source).toBe('fallback');
  });

  it('throws, naming the file, on a malformed cpulist', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n', node1: '7-4\n' } });
    let thrown: unknown;
    try {
      readTopology(roots);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toContain(join('node1', 'cpulist'));
    expect((thrown as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it('throws on a malformed cpu/online file', () => {
    const roots = fakeMachine({ nodes: { node0: '0-3\n' }, online: 'all\n' });
    expect(() => readTopology(roots)).toThrow(/cpu[/\\]online/);
  });

  it('reads the real machine: at least one node with a CPU', () => {
    const topology = readTopology();
    expect(topology.nodes.length).toBeGreaterThanOrEqual(1);
    for (const node of topology.nodes) expect(node.cpus.length).toBeGreaterThanOrEqual(1);
  });
});

describe('planWorkers', () => {
  it('one node with 2 CPUs: one worker per CPU, partitions round-robin', () => {
    const topology = topologyOf(2);
    const plan = planWorkers(topology, { partitions: 16 });
    expectValidPlan(plan, topology, 16);
    expect(plan).toEqual({
      nodes: 1,
      notes: [],
      workers: [
        { index: 0, node: 0, cpus: [0, 1], partitions: [0, 2, 4, 6, 8, 10, 12, 14] },
        { index: 1, node: 0, cpus: [0, 1], partitions: [1, 3, 5, 7, 9, 11, 13, 15] },
      ],
    });
  });

  it('two sockets of 8 CPUs: 8 workers per node, each node a contiguous block of partitions', () => {
    const topology = topologyOf(8, 8);
    const plan = planWorkers(topology, { workers: 'auto', partitions: 64 });
    expectValidPlan(plan, topology, 64);
    expect(plan.nodes).toBe(2);
    expect(workersPerNodeOf(plan, topology)).toEqual([8, 8]);
    const node0 = plan.workers.filter((worker) => worker.node === 0).flatMap((worker) => worker.partitions);
    expect(node0.sort((a, b) => a - b)).toEqual(range(0, 31));
    expect(plan.workers[0]!.partitions).toEqual([0, 8, 16, 24]);
    expect(plan.workers[8]).toEqual({ index: 8, node: 1, cpus: range(8, 15), partitions: [32, 40, 48, 56] });
  });

  it('uneven nodes: explicit workers follow CPU counts', () => {
    const topology = topologyOf(6, 2);
    const four = planWorkers(topology, { workers: 4, partitions: 16 });
    expectValidPlan(four, topology, 16);
    expect(workersPerNodeOf(four, topology)).toEqual([3, 1]);
    expect(four.workers.map((worker) => worker.partitions)).toEqual([
      [0, 3, 6, 9],
      [1, 4, 7, 10],
      [2, 5, 8, 11],
      [12, 13, 14, 15],
    ]);
    expect(workersPerNodeOf(planWorkers(topology, { workers: 3, partitions: 16 }), topology)).toEqual([2, 1]);
    expect(workersPerNodeOf(planWorkers(topology, { workers: 8, partitions: 16 }), topology)).toEqual([6, 2]);
  });

  it('one worker on two nodes goes to the larger node, with a note about the idle one', () => {
    const topology: Topology = {
      source: 'sysfs',
      nodes: [
        { id: 0, cpus: [0, 1] },
        { id: 1, cpus: range(2, 7) },
      ],
    };
    const plan = planWorkers(topology, { workers: 1, partitions: 8 });
    expectValidPlan(plan, topology, 8);
    expect(plan.workers).toEqual([{ index: 0, node: 1, cpus: range(2, 7), partitions: range(0, 7) }]);
    expect(plan.nodes).toBe(1);
    expect(plan.notes.join('\n')).toContain('no worker on node 0');
  });

  it('caps workers at the partition count, with a note', () => {
    const topology = topologyOf(8, 8);
    const plan = planWorkers(topology, { partitions: 4 });
    expectValidPlan(plan, topology, 4);
    expect(plan.workers.length).toBe(4);
    expect(workersPerNodeOf(plan, topology)).toEqual([2, 2]);
    expect(plan.notes.join('\n')).toMatch(/16 workers capped at 4/);

    const explicit = planWorkers(topology, { workers: 40, partitions: 16 });
    expect(explicit.workers.length).toBe(16);
    expect(explicit.notes.join('\n')).toMatch(/40 workers capped at 16/);
  });

  it('notes workers that share CPUs when a node has more workers than CPUs', () => {
    const topology = topologyOf(2);
    const plan = planWorkers(topology, { workers: 4, partitions: 16 });
    expectValidPlan(plan, topology, 16);
    expect(plan.workers.every((worker) => worker.cpus.join() === '0,1')).toBe(true);
    expect(plan.notes).toEqual(['node 0: 4 workers share 2 CPUs']);
  });

  it('workersPerNode starts the same number on every node, whatever their size', () => {
    const topology = topologyOf(6, 2);
    const plan = planWorkers(topology, { workersPerNode: 2, partitions: 16 });
    expectValidPlan(plan, topology, 16);
    expect(workersPerNodeOf(plan, topology)).toEqual([2, 2]);
    expect(plan.workers.map((worker) => worker.partitions.length)).toEqual([4, 4, 4, 4]);

    // Capped at 3 partitions, the odd worker goes to the larger node.
    const capped = planWorkers(topologyOf(2, 6), { workers: 'auto', workersPerNode: 2, partitions: 3 });
    expect(workersPerNodeOf(capped, topologyOf(2, 6))).toEqual([1, 2]);
    expect(capped.notes.join('\n')).toMatch(/4 workers capped at 3/);
  });

  it('holds its invariants over a grid of topologies, worker counts and partition counts', () => {
    const topologies = [
      topologyOf(1),
      topologyOf(2),
      topologyOf(8, 8),
      topologyOf(6, 2),
      topologyOf(3, 5, 1, 7),
    ];
    for (const topology of topologies) {
      const cpuTotal = topology.nodes.reduce((sum, node) => sum + node.cpus.length, 0);
      for (let partitions = 1; partitions <= 40; partitions++) {
        for (const workers of ['auto', 1, 2, 3, 5, 7, 16, 33] as const) {
          const plan = planWorkers(topology, { workers, partitions });
          expectValidPlan(plan, topology, partitions);
          const workerTotal = Math.min(workers === 'auto' ? cpuTotal : workers, partitions);
          expect(plan.workers.length).toBe(workerTotal);
          // Each node gets the floor or the ceiling of its CPU-proportional share.
          workersPerNodeOf(plan, topology).forEach((count, n) => {
            const share = (workerTotal * topology.nodes[n]!.cpus.length) / cpuTotal;
            expect(count).toBeGreaterThanOrEqual(Math.floor(share));
            expect(count).toBeLessThanOrEqual(Math.ceil(share));
          });
        }
        for (const workersPerNode of [1, 2, 3]) {
          const plan = planWorkers(topology, { workersPerNode, partitions });
          expectValidPlan(plan, topology, partitions);
          const workerTotal = Math.min(workersPerNode * topology.nodes.length, partitions);
          for (const count of workersPerNodeOf(plan, topology)) {
            expect(count).toBeGreaterThanOrEqual(Math.floor(workerTotal / topology.nodes.length));
            expect(count).toBeLessThanOrEqual(Math.ceil(workerTotal / topology.nodes.length));
          }
        }
      }
    }
  });

  it('ignores nodes without CPUs and accepts unsorted input', () => {
    const topology: Topology = {
      source: 'sysfs',
      nodes: [
        { id: 3, cpus: [7, 6] },
        { id: 1, cpus: [] },
        { id: 0, cpus: [1, 0] },
      ],
    };
    const plan = planWorkers(topology, { partitions: 4 });
    expect(plan.workers.map((worker) => [worker.node, worker.cpus])).toEqual([
      [0, [0, 1]],
      [0, [0, 1]],
      [3, [6, 7]],
      [3, [6, 7]],
    ]);
    expect(plan.nodes).toBe(2);
  });

  it('returns plain data that survives structured cloning, with no shared arrays', () => {
    const plan = planWorkers(topologyOf(4), { partitions: 8 });
    expect(structuredClone(plan)).toEqual(plan);
    plan.workers[0]!.cpus.push(99);
    expect(plan.workers[1]!.cpus).toEqual([0, 1, 2, 3]);
  });

  it("two sockets with interleaved cpulists and offline CPUs: workers get only their node's online CPUs", () => {
    // Hyper-threaded two-socket numbering: siblings 8 apart; CPUs 5 and 13 taken offline.
    const roots = fakeMachine({
      nodes: { node0: '0-3,8-11\n', node1: '4-7,12-15\n' },
      online: '0-4,6-12,14-15\n',
    });
    const topology = readTopology(roots);
    expect(topology.nodes).toEqual([
      { id: 0, cpus: [0, 1, 2, 3, 8, 9, 10, 11] },
      { id: 1, cpus: [4, 6, 7, 12, 14, 15] },
    ]);
    const plan = planWorkers(topology, { partitions: 28 });
    expectValidPlan(plan, topology, 28);
    expect(workersPerNodeOf(plan, topology)).toEqual([8, 6]);
    expect(plan.workers[8]!.cpus).toEqual([4, 6, 7, 12, 14, 15]);
    expect(
      plan.workers
        .filter((worker) => worker.node === 1)
        .flatMap((worker) => worker.partitions)
        .sort((a, b) => a - b),
    ).toEqual(range(16, 27));
    expect(plan.workers.flatMap((worker) => worker.cpus)).not.toContain(5);
    expect(plan.workers.flatMap((worker) => worker.cpus)).not.toContain(13);
  });

  it('plans from the real machine topology', () => {
    const topology = readTopology();
    expectValidPlan(planWorkers(topology, { partitions: 16 }), topology, 16);
  });

  describe('rejects bad options with ERR_BAD_ARGUMENT', () => {
    const topology = topologyOf(2, 2);
    const plan = (options: unknown) => planWorkers(topology, options as PlanWorkersOptions);

    it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '16', undefined, null, partitionsMax + 1])(
      'partitions: %j',
      (partitions) => expectBadArgument(() => plan({ partitions }), 'partitions must be an integer'),
    );

    it.each([0, -2, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '4', 'all', null, true])(
      'workers: %j',
      (workers) =>
        expectBadArgument(() => plan({ workers, partitions: 16 }), 'workers must be a positive integer'),
    );

    it.each([0, -1, 1.5, '2', null, 'auto'])('workersPerNode: %j', (workersPerNode) =>
      expectBadArgument(
        () => plan({ workersPerNode, partitions: 16 }),
        'workersPerNode must be a positive integer',
      ),
    );

    it('workers and workersPerNode together', () => {
      expectBadArgument(() => plan({ workers: 4, workersPerNode: 2, partitions: 16 }), 'conflict');
    });

    it('options that are not an object', () => {
      expectBadArgument(() => plan(null), 'options must be an object');
      expectBadArgument(() => plan(16), 'options must be an object');
    });

    it('a topology without any CPU', () => {
      const memoryOnly: Topology = { source: 'sysfs', nodes: [{ id: 0, cpus: [] }] };
      expectBadArgument(() => planWorkers(memoryOnly, { partitions: 4 }), 'no node with a CPU');
      expectBadArgument(
        () => planWorkers({ source: 'sysfs', nodes: [] }, { partitions: 4 }),
        'no node with a CPU',
      );
    });

    it('a malformed topology', () => {
      const twice: Topology = {
        source: 'sysfs',
        nodes: [
          { id: 0, cpus: [0] },
          { id: 0, cpus: [1] },
        ],
      };
      expectBadArgument(() => planWorkers(twice, { partitions: 4 }), 'node 0 twice');
      const badCpu: Topology = { source: 'sysfs', nodes: [{ id: 0, cpus: [-1] }] };
      expectBadArgument(() => planWorkers(badCpu, { partitions: 4 }), 'CPU ids must be integers');
      expectBadArgument(
        () => planWorkers(null as unknown as Topology, { partitions: 4 }),
        'topology must be',
      );
    });
  });
});

/**
 * Pinning a thread to CPUs: for real in a worker thread of its own (pin to CPU 0, read the mask back
 * from the kernel), the clean fallbacks (no taskset, a failing taskset, a mask the kernel did not take,
 * another OS), the pinning policy, and the placement every owner worker reports in stats().
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { attach, open } from '../src/index.js';
import {
  decidePinning,
  formatCpuList,
  parseCpuList,
  readThreadCpuList,
  readTopology,
  type Topology,
} from '../src/numa/index.js';
import type { PinAttempt, PinReport } from './fixtures/affinity-worker.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const onLinux = process.platform === 'linux';
const hasTaskset = onLinux && spawnSync('taskset', ['--version']).status === 0;
/** The CPUs this process may run on; pinning tests need to know what "unchanged" looks like. */
const processCpus = onLinux ? parseCpuList(readThreadCpuList() ?? '') : [];
const missingCommand = 'lightning-test-no-such-taskset';

const tsxApiUrl = ((): string => {
  const requireHere = createRequire(import.meta.url);
  const manifestPath = requireHere.resolve('tsx/package.json');
  const manifest = requireHere(manifestPath) as { exports: { './esm/api': { import: { default: string } } } };
  return pathToFileURL(join(dirname(manifestPath), manifest.exports['./esm/api'].import.default)).href;
})();

/**
 * Runs the attempts in a fresh worker thread (the fixture registers nothing global). On Node 20 a
 * worker ignores `--import`, so an eval bootstrap registers tsx's hooks, then imports the fixture.
 */
function pinInWorker(attempts: PinAttempt[]): Promise<PinReport[]> {
  const fixture = new URL('./fixtures/affinity-worker.ts', import.meta.url).href;
  const bootstrap =
    `import(${JSON.stringify(tsxApiUrl)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(fixture)}); });`;
  const worker = new Worker(bootstrap, { eval: true, workerData: { attempts } });
  return new Promise((resolve, reject) => {
    worker.once('message', (reports: PinReport[]) => {
      resolve(reports);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`affinity worker exited with ${code} before reporting`)));
  });
}

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lightning-affinity-'));
  tempDirs.push(dir);
  return dir;
}

describe('formatCpuList', () => {
  it('collapses runs, sorts and removes duplicates', () => {
    expect(formatCpuList([0, 1, 2, 3, 8])).toBe('0-3,8');
    expect(formatCpuList([9, 8, 0, 2, 1, 1])).toBe('0-2,8-9');
    expect(formatCpuList([5])).toBe('5');
    expect(formatCpuList([1, 3, 5])).toBe('1,3,5');
    expect(formatCpuList([])).toBe('');
  });

  it('is the inverse of parseCpuList on random sets', () => {
    const seed = seedFromEnv(0xc9);
    const next = mulberry32(seed);
    for (let round = 0; round < 500; round++) {
      const cpus = [...new Set(Array.from({ length: next() % 40 }, () => next() % 64))].sort((a, b) => a - b);
      expect(parseCpuList(formatCpuList(cpus)), `seed ${seed} round ${round}`).toEqual(cpus);
    }
  });
});

describe('decidePinning', () => {
  const oneNode: Topology = { source: 'sysfs', nodes: [{ id: 0, cpus: [0, 1] }] };
  const twoNodes: Topology = {
    source: 'sysfs',
    nodes: [
      { id: 0, cpus: [0, 1] },
      { id: 1, cpus: [2, 3] },
    ],
  };
  const fallback: Topology = { source: 'fallback', nodes: [{ id: 0, cpus: [0, 1, 2, 3] }] };

  it("'auto' pins only where sysfs shows more than one node", () => {
    expect(decidePinning('auto', twoNodes)).toEqual({ pin: true });
    expect(decidePinning('auto', oneNode)).toEqual({
      pin: false,
      reason: expect.stringContaining('one NUMA node'),
    });
    expect(decidePinning('auto', fallback)).toEqual({ pin: false, reason: expect.stringContaining('sysfs') });
  });

  it('true always pins and false never does', () => {
    for (const topology of [oneNode, twoNodes, fallback]) {
      expect(decidePinning(true, topology)).toEqual({ pin: true });
      expect(decidePinning(false, topology)).toEqual({ pin: false, reason: 'pinWorkers is false' });
    }
  });
});

describe('pinCurrentThread', () => {
  it.runIf(hasTaskset)(
    'pins a worker thread to CPU 0 and reads the mask back, leaving other threads alone',
    async () => {
      const mainBefore = readThreadCpuList();
      const [toZero, back] = await pinInWorker([{ cpus: [0] }, { cpus: processCpus }]);
      expect(toZero!.tid).toBeGreaterThan(0);
      expect(toZero!.tid).not.toBe(process.pid);
      expect(toZero!.before).toBe(formatCpuList(processCpus));
      expect(toZero!.placement).toEqual({ cpus: '0', pinned: true });
      expect(toZero!.after).toBe('0');
      // The same thread widens its mask again: the read-back follows the kernel, not the request alone.
      expect(back!.tid).toBe(toZero!.tid);
      expect(back!.placement).toEqual({ cpus: formatCpuList(processCpus), pinned: true });
      // sched_setaffinity on a thread id touches that thread only.
      expect(readThreadCpuList()).toBe(mainBefore);
    },
  );

  it.runIf(onLinux)('falls back cleanly when taskset is missing', async () => {
    const [report] = await pinInWorker([{ cpus: [0], options: { command: missingCommand } }]);
    expect(report!.placement.pinned).toBe(false);
    expect(report!.placement.reason).toBe(
      `${missingCommand} is not installed (util-linux); install it to pin workers`,
    );
    expect(report!.placement.cpus).toBe(report!.before);
    expect(report!.after).toBe(report!.before);
  });

  it.runIf(hasTaskset)('reports the error when the kernel refuses the CPUs', async () => {
    // A CPU id far above any this machine has: sched_setaffinity fails with EINVAL.
    const [report] = await pinInWorker([{ cpus: [4000] }]);
    expect(report!.placement.pinned).toBe(false);
    expect(report!.placement.reason).toMatch(/^taskset failed \(exit 1\)/);
    expect(report!.after).toBe(report!.before);
  });

  it.runIf(onLinux && processCpus.length > 1)(
    'does not trust a command that exits 0 without setting the mask',
    async () => {
      const [report] = await pinInWorker([{ cpus: [processCpus[0]!], options: { command: 'true' } }]);
      expect(report!.placement).toEqual({
        cpus: formatCpuList(processCpus),
        pinned: false,
        reason: `asked for CPUs ${processCpus[0]}, the kernel kept ${formatCpuList(processCpus)}`,
      });
    },
  );

  it('reports another OS without trying', async () => {
    const [report] = await pinInWorker([
      { cpus: [0], options: { platform: 'darwin', command: missingCommand } },
    ]);
    expect(report!.placement.pinned).toBe(false);
    expect(report!.placement.reason).toBe('thread pinning needs Linux; this is darwin');
  });

  it('reports a missing /proc/thread-self', async () => {
    const [report] = await pinInWorker([
      { cpus: [0], options: { procRoot: '/nonexistent-proc', platform: 'linux' } },
    ]);
    expect(report!.placement).toEqual({
      cpus: '0',
      pinned: false,
      reason: "cannot find this thread's id: /nonexistent-proc/thread-self is unreadable",
    });
  });
});

describe('open(): pinWorkers and stats().workerStats[i].placement', () => {
  it.runIf(hasTaskset)(
    'pinWorkers: true pins every owner to its node, as stats() reports on every thread',
    async () => {
      const db = await open(makeTempDir(), { partitions: 4, workers: 2, pinWorkers: true });
      try {
        const topology = readTopology();
        const placements = db.stats().workerStats.map((stats) => stats.placement);
        expect(placements).toHaveLength(2);
        for (const placement of placements) {
          const node = topology.nodes.find((candidate) => candidate.id === placement.node);
          expect(node).toBeDefined();
          expect(placement).toEqual({ node: placement.node, cpus: formatCpuList(node!.cpus), pinned: true });
        }
        const attached = await attach(db.share());
        expect(attached.stats().workerStats.map((stats) => stats.placement)).toEqual(placements);
        await attached.close();
      } finally {
        await db.close();
      }
    },
  );

  it('pinWorkers: false leaves the owners where they are and says so', async () => {
    const db = await open(makeTempDir(), { partitions: 2, workers: 1, pinWorkers: false });
    try {
      const [stats] = db.stats().workerStats;
      expect(stats!.placement.pinned).toBe(false);
      expect(stats!.placement.reason).toBe('pinWorkers is false');
      if (onLinux) expect(stats!.placement.cpus).toBe(formatCpuList(processCpus));
    } finally {
      await db.close();
    }
  });

  it("pinWorkers 'auto' (the default) pins exactly when sysfs shows several nodes", async () => {
    const db = await open(makeTempDir(), { partitions: 2, workers: 1 });
    try {
      const topology = readTopology();
      const expected = decidePinning('auto', topology);
      const [stats] = db.stats().workerStats;
      expect(stats!.placement.pinned).toBe(expected.pin && hasTaskset);
      if (!expected.pin) expect(stats!.placement.reason).toBe(expected.reason);
    } finally {
      await db.close();
    }
  });

  it.each(['yes', 1, 0, 'true', {}])('rejects pinWorkers: %j with ERR_BAD_ARGUMENT', async (pinWorkers) => {
    const options = { pinWorkers } as unknown as Parameters<typeof open>[1];
    await expect(open(makeTempDir(), options)).rejects.toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
      message: expect.stringContaining('pinWorkers must be true, false or'),
    });
  });
});

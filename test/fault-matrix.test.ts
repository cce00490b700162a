/**
 * The fault matrix: every file and directory of a real database (LIGHTNING.json, each partition's
 * MANIFEST.json and checkpoint, each write-ahead log segment, the whole wal/ directory, each
 * partition directory) crossed with every fault an unlucky or careless user can do to it (deleted,
 * truncated to 0 or half-way, a byte flipped, put back from an older copy or from another
 * database). Each cell damages a fresh copy and holds open(), `verify` and `repair` to one rule:
 * open() either reads back every key of the model exactly (a) or refuses with ERR_CORRUPTION naming
 * what is damaged (b) — never opens with data lost or wrong (c, silent loss); verify exits 0 exactly
 * where open() reads everything and otherwise names the damage; a repaired database never holds a
 * value a key never had, and loses nothing it does not report.
 *
 * Two databases are damaged: 'ckpt' (checkpoints in every partition, log tails past them, and a
 * second run's logs) and 'logs' (no checkpoint: every record is needed; one partition's files).
 * Cells open the databases built by a bundle of the sources (bundled-engine.ts says why). Every cell's outcome is
 * printed as one table before the cells are asserted, so one run shows the whole picture.
 * LIGHTNING_SEED replays a run; LIGHTNING_FAULT_MATRIX_JOBS sets how many cells run at once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BundledEngine, bundleEngine } from './support/fault-matrix/bundled-engine.js';
import { type Cell, type CellReport, renderMatrix, runCell } from './support/fault-matrix/cells.js';
import { faultNames, listTargets, planFault, type TargetKind } from './support/fault-matrix/faults.js';
import {
  buildCheckpointed,
  buildLogsOnly,
  partitionCount,
  type Variant,
} from './support/fault-matrix/fixture.js';
import { seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x5eed_fa17);
const cellsAtOnce = Number(process.env.LIGHTNING_FAULT_MATRIX_JOBS ?? 2);

let root: string;
let engine: BundledEngine;
let variants: Variant[];

beforeAll(async () => {
  console.log(`fault matrix seed ${seed} (LIGHTNING_SEED=${seed} replays it)`);
  engine = await bundleEngine();
  root = await mkdtemp(join(tmpdir(), 'lightning-fault-matrix-'));
  variants = [await buildCheckpointed(engine.open, root, seed), await buildLogsOnly(engine.open, root, seed)];
});

afterAll(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
  engine?.dispose();
});

/**
 * The kinds of cell whose first applicable cell in 'ckpt' also runs `lightning-cli verify` in a child
 * process, one of each kind of damage; every other cell runs the same verify in-process.
 */
const throughCliKinds: readonly string[] = [
  'metadata:delete',
  'segment:truncate-mid',
  'segment:flip-covered',
  'segment:flip-needed',
  'manifest:flip-mid',
  'checkpoint:delete',
  'partition-dir:delete',
];

/**
 * The one partition whose files are damaged in 'logs' (chosen by the seed): 'ckpt' damages every
 * partition's, and the files of a partition without a checkpoint are the same in each.
 */
const logsPartition = seed % partitionCount;

/** Every cell, in table order. */
async function planCells(): Promise<Cell[]> {
  const cells: Cell[] = [];
  const throughCli = new Set<string>();
  for (const variant of variants) {
    const other = variants.find((v) => v !== variant)!;
    for (const target of await listTargets(variant.directory)) {
      if (variant.name === 'logs' && target.partition !== null && target.partition !== logsPartition)
        continue;
      for (const fault of faultNames) {
        const plan = await planFault(variant, other, target, fault);
        if (plan === null) continue;
        const kind = `${target.kind}:${fault}`;
        const first =
          variant.name === 'ckpt' &&
          plan.notApplicable === null &&
          throughCliKinds.includes(kind) &&
          !throughCli.has(kind);
        if (first) throughCli.add(kind);
        cells.push({ variant, target, fault, plan, throughCli: first });
      }
    }
  }
  return cells;
}

async function runAll(cells: readonly Cell[], workDirectory: string): Promise<CellReport[]> {
  const reports: CellReport[] = new Array(cells.length);
  let next = 0;
  const lane = async () => {
    while (next < cells.length) {
      const index = next++;
      reports[index] = await runCell(engine, cells[index]!, workDirectory, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cellsAtOnce) }, lane));
  return reports;
}

describe('fault matrix', () => {
  it('never loses data silently: each damaged database opens whole or is refused naming the damage, and verify agrees', async () => {
    const cells = await planCells();
    // The matrix must cover what it says it covers: a listing that found nothing would pass vacuously.
    const kinds = new Set(cells.map((cell) => `${cell.variant.name}:${cell.target.kind}`));
    const required: TargetKind[] = [
      'metadata',
      'manifest',
      'checkpoint',
      'segment',
      'wal-dir',
      'partition-dir',
    ];
    for (const kind of required) expect(kinds, `a ${kind} in the 'ckpt' database`).toContain(`ckpt:${kind}`);
    // A partition's manifest is written when the partition is created, before any checkpoint.
    for (const kind of ['segment', 'manifest', 'partition-dir']) expect(kinds).toContain(`logs:${kind}`);

    const reports = await runAll(cells, join(root, 'cells'));
    const ran = reports.filter((report) => report.outcome !== 'n/a');
    const failed = ran.filter((report) => report.problems.length > 0);
    console.log(
      `fault matrix (seed ${seed}): ${ran.length} cells run, ${ran.length - failed.length} pass, ` +
        `${failed.length} fail, ${reports.length - ran.length} n/a\n${renderMatrix(reports)}`,
    );
    expect(ran.length).toBeGreaterThan(40);
    expect(failed.map((report) => reports.indexOf(report))).toEqual([]);
  }, 900_000);
});

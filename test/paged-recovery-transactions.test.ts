/**
 * Recovery of a partition over a page file whose log holds two-phase commits, with a pool small
 * enough that the replay writes page sets while a prepared transaction waits for its decision: the
 * set must then be at the prepare (its writes are not in the tree yet, and the next replay must meet
 * it again).
 *
 * The first run's log ends with transaction 1 prepared and thousands of writes after it. The first
 * open replays it, writing sets on the way, and resolves transaction 1 as committed (the coordinators'
 * decision logs say so). The second run logs that decision, as an owner does after recovery, then
 * transaction 2 prepared and aborted, and transactions 3 and 4 prepared and left in doubt (3
 * committed by the decision logs, 4 presumed aborted). Three more opens must each give the model's
 * tree; the first of them replays from the first open's last set, which lies after transaction 1's
 * prepare and before its decision. Transactions write keys of their own (their locks keep plain
 * writes off them). Every page must be sound after each open.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed below>.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BatchEntry,
  batchEncodedBytes,
  delEncodedBytes,
  encodeBatch,
  encodeDel,
  encodePut,
  operationPut,
  putEncodedBytes,
} from '../src/shared-memory/ring/operation-codec.js';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { partitionDirectory, walDirectory } from '../src/storage/layout.js';
import { pageFileProblems } from '../src/storage/page-file/page-file-writer.js';
import {
  PartitionLog,
  recordTypeDecision,
  recordTypeOperation,
  recordTypePrepare,
  WalWriter,
} from '../src/storage/wal/index.js';
import { LogCoverage } from '../src/storage/wal/log-coverage.js';
import { PagedTree } from '../src/workers/paged-tree.js';
import { recoverPartitions } from '../src/workers/partition-recovery.js';
import { encodeDecisionRecord, encodePrepareRecord } from '../src/workers/transaction-records.js';
import {
  createPagedDatabase,
  entriesDigest,
  pagedPageSize,
  treeDigest,
} from './fixtures/paged-partition-cycles.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x9a6e_d003);
console.log(`paged-recovery-transactions: seed ${seed} (LIGHTNING_SEED to replay)`);
/** Room for a transaction's batch at once (every page it may change), not for the whole log. */
const framesMax = 96;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-tx-'));
  await createPagedDatabase(dir);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The log's records, and the tree recovery must build from them. */
class Script {
  readonly model = new Map<string, Buffer>();
  readonly #random: () => number;
  log: PartitionLog | null = null;

  constructor(random: () => number) {
    this.#random = random;
  }

  #append(
    type: typeof recordTypeOperation | typeof recordTypePrepare | typeof recordTypeDecision,
    payload: Uint8Array,
  ): void {
    this.log!.append(type, [payload]);
  }

  value(): Buffer {
    const random = this.#random;
    return randomBytes(random, random() % 25 === 0 ? 4500 + (random() % 3000) : 20 + (random() % 400));
  }

  /** `count` plain puts and deletes over keys k0..k599. */
  plainWrites(count: number): void {
    for (let i = 0; i < count; i++) {
      const key = Buffer.from(`k${this.#random() % 600}`);
      if (this.#random() % 5 === 0) {
        const payload = new Uint8Array(delEncodedBytes(key));
        encodeDel(payload, 0, 0, key);
        this.#append(recordTypeOperation, payload);
        this.model.delete(key.toString());
      } else {
        const value = this.value();
        const payload = new Uint8Array(putEncodedBytes(key, value));
        encodePut(payload, 0, 0, key, value);
        this.#append(recordTypeOperation, payload);
        this.model.set(key.toString(), value);
      }
    }
  }

  /** Logs transaction `id`'s prepare: `count` puts of keys of its own. Returns them. */
  prepare(id: number, count: number): BatchEntry[] {
    const entries: BatchEntry[] = Array.from({ length: count }, (_, i) => ({
      kind: operationPut,
      key: Buffer.from(`tx${id}-${i}`),
      value: this.value(),
    }));
    const batch = new Uint8Array(batchEncodedBytes(entries));
    encodeBatch(batch, 0, 0, entries);
    this.#append(recordTypePrepare, encodePrepareRecord(id, batch));
    return entries;
  }

  decide(id: number, committed: boolean): void {
    this.#append(recordTypeDecision, encodeDecisionRecord(id, committed));
  }

  applyToModel(entries: BatchEntry[]): void {
    for (const entry of entries) this.model.set(entry.key.toString(), Buffer.from(entry.value!));
  }

  digest(): string {
    const sorted = [...this.model.entries()]
      .map(([key, value]): [Buffer, Buffer] => [Buffer.from(key), value])
      .sort(([a], [b]) => Buffer.compare(a, b));
    return entriesDigest(sorted);
  }
}

interface Opened {
  /** The redo LSN of each set the open wrote, in order. */
  sets: number[];
  nextLsn: number;
}

/**
 * Opens the partition, reading the logs of runs before `epoch`; checks the tree against `expected`,
 * the in-doubt resolutions, checkTree and every page; closes it.
 */
async function openAndCheck(
  epoch: number,
  committed: ReadonlySet<number>,
  resolved: { transactionId: number; committed: boolean }[],
  expected: string,
  what: string,
): Promise<Opened> {
  const paged = await PagedTree.open({
    dir: partitionDirectory(dir, 0),
    partition: 0,
    pageSizeBytes: pagedPageSize,
    pagesMax: 16_384,
    framesMax,
  });
  let opened: Opened;
  const sets: number[] = [];
  // Every set goes through writePages (withRoom calls it): watch the redo LSNs it is given.
  const writePages = paged.writePages.bind(paged);
  paged.writePages = (redoLsn, timestampHigh) => {
    sets.push(redoLsn);
    return writePages(redoLsn, timestampHigh);
  };
  try {
    const recovered = await recoverPartitions(
      dir,
      [{ partition: 0, tree: paged.tree, pages: paged }],
      committed,
      epoch,
      new LogCoverage([null]),
    );
    const recovery = recovered.partitions[0]!;
    expect(recovery.resolved, what).toEqual(resolved);
    checkTree(paged.tree);
    expect(treeDigest(paged.tree), `${what}, seed ${seed}`).toBe(expected);
    expect(paged.setsWritten).toBe(sets.length);
    opened = { sets, nextLsn: recovery.nextLsn };
  } finally {
    paged.close();
  }
  expect(await pageFileProblems(partitionDirectory(dir, 0), pagedPageSize), what).toEqual([]);
  return opened;
}

describe('a partition over a page file, recovered from a log of two-phase commits', () => {
  it('writes sets at a waiting prepare, so that every later open finds the same tree', async () => {
    const script = new Script(mulberry32(seed));
    let writer = await WalWriter.open(walDirectory(dir), { epoch: 1, worker: 0 });
    script.log = new PartitionLog(writer, 0, 1);
    script.plainWrites(100);
    const firstPrepareLsn = script.log.nextLsn;
    const first = script.prepare(1, 12);
    // Enough writes after the prepare to fill the pool many times over.
    script.plainWrites(3000);
    await writer.close();
    script.applyToModel(first);
    const runOne = await openAndCheck(
      2,
      new Set([1]),
      [{ transactionId: 1, committed: true }],
      script.digest(),
      'first open',
    );
    // The owner logs the decisions recovery made, then goes on.
    writer = await WalWriter.open(walDirectory(dir), { epoch: 2, worker: 0 });
    script.log = new PartitionLog(writer, 0, runOne.nextLsn);
    script.decide(1, true);
    script.plainWrites(200);
    script.prepare(2, 12);
    script.plainWrites(200);
    script.decide(2, false);
    const inDoubt = script.prepare(3, 12);
    script.prepare(4, 12);
    script.plainWrites(300);
    await writer.close();
    // Resolved at the end of recovery: transaction 3 committed, 4 presumed aborted.
    script.applyToModel(inDoubt);
    const resolved = [
      { transactionId: 3, committed: true },
      { transactionId: 4, committed: false },
    ];
    const sets = [runOne.sets.length];
    for (let open = 2; open <= 4; open++) {
      sets.push((await openAndCheck(3, new Set([3]), resolved, script.digest(), `open ${open}`)).sets.length);
    }
    console.log(
      `paged-recovery-transactions: sets written while replaying, per open: ${sets.join(', ')}; ` +
        `the first open's at redo LSNs ${runOne.sets.join(', ')} (transaction 1 prepared at ${firstPrepareLsn})`,
    );
    // The first replay ran through thousands of writes in 96 frames, transaction 1 waiting throughout:
    // every set it wrote is at the prepare or before it, never past it.
    expect(runOne.sets.length).toBeGreaterThan(0);
    for (const redoLsn of runOne.sets) expect(redoLsn).toBeLessThanOrEqual(firstPrepareLsn);
  }, 60_000);

  it('writes sets at the record the pool refused, so that the next open replays it', async () => {
    const script = new Script(mulberry32(seed ^ 0x5a5a));
    const writer = await WalWriter.open(walDirectory(dir), { epoch: 1, worker: 0 });
    script.log = new PartitionLog(writer, 0, 1);
    script.plainWrites(3000);
    await writer.close();
    const first = await openAndCheck(2, new Set(), [], script.digest(), 'first open');
    // The second open replays from the first one's last set: the record it was refused at included.
    await openAndCheck(2, new Set(), [], script.digest(), 'second open');
    expect(first.sets.length).toBeGreaterThan(0);
    console.log(`paged-recovery-transactions: plain log, sets at redo LSNs ${first.sets.join(', ')}`);
  }, 60_000);
});

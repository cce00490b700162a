/**
 * Through open(): a cross-partition transaction is held prepared (the 'tx.after-prepare' gate) while
 * ordinary writes fill the partition of its key, each refused with ERR_PARTITION_FULL once full; then
 * it commits. Its decision, applied at the owner's next pass, used to need pages the fillers had
 * taken: the owner stopped (every later write ERR_WORKER_CRASHED), and in the put case the log no
 * longer fit the partition, so the database would not open again with the same options. Staging now
 * holds the decision's pages (test/decision-pages.test.ts): the fillers are refused earlier, the
 * decision applies, and the database serves and reopens (see the known gap at the reopen).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';
import { setFailpointGate } from '../src/workers/failpoints.js';
import { codeOf, within } from './support/async.js';
import { keyPicker } from './support/tx-keys.js';

const dirs: string[] = [];
afterAll(() => {
  setFailpointGate('tx.after-prepare', null);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const options = { partitions: 2, workers: 1, partitionBytesMax: 256 * 1024, durability: 'none' } as const;

interface Scenario {
  name: string;
  partitionBytesMax: number;
  /** The value the transaction's keys hold before it, or null for new keys. */
  before: Buffer | null;
  snapshot: boolean;
  /** How many keys of the filled partition the transaction writes, and what it writes to each. */
  keys: number;
  write: Buffer | null;
  fillerSizes: number[];
}

const scenarios: Scenario[] = [
  {
    name: 'a delete of a large value under a snapshot',
    partitionBytesMax: 256 * 1024,
    before: Buffer.alloc(30_000, 1),
    snapshot: true,
    keys: 1,
    write: null,
    fillerSizes: [30_000, 8_000, 2_000, 500, 50],
  },
  {
    name: 'a put over a large value',
    partitionBytesMax: 256 * 1024,
    before: Buffer.alloc(30_000, 1),
    snapshot: false,
    keys: 1,
    write: Buffer.alloc(20_000, 3),
    fillerSizes: [30_000, 8_000, 2_000, 500, 50],
  },
  {
    name: 'a large put of a new key under a snapshot',
    partitionBytesMax: 256 * 1024,
    before: null,
    snapshot: true,
    keys: 1,
    write: Buffer.alloc(20_000, 3),
    fillerSizes: [30_000, 8_000, 2_000, 500, 50],
  },
  {
    name: 'puts of 40 small new keys',
    partitionBytesMax: 1024 * 1024,
    before: null,
    snapshot: false,
    keys: 40,
    write: Buffer.alloc(40, 3),
    fillerSizes: [2_000, 500, 50],
  },
];

describe('a decision applied after its partition filled', () => {
  for (const scenario of scenarios) {
    it(`commits ${scenario.name}, and the database serves and reopens`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ldb-decision-pages-'));
      dirs.push(dir);
      const opened = { ...options, partitionBytesMax: scenario.partitionBytesMax };
      let db: Database | null = await open(dir, opened);
      try {
        const keys = await keyPicker(2);
        const same = keys.samePartition('a-', 1000);
        const txKeys = same.slice(0, scenario.keys);
        const fillers = same.slice(scenario.keys);
        const other = keys
          .differentPartitions('b-', 2)
          .find((k) => keys.partitionOf(k) !== keys.partitionOf(same[0]!))!;
        if (scenario.before !== null) for (const key of txKeys) await db.put(key, scenario.before);
        await db.put(other, 'b');
        const snapshot = scenario.snapshot ? db.snapshot() : null;
        let release!: () => void;
        let arrived!: () => void;
        const arrival = new Promise<void>((resolve) => {
          arrived = resolve;
        });
        setFailpointGate('tx.after-prepare', () => {
          arrived();
          return new Promise<void>((resolve) => {
            release = resolve;
          });
        });
        const tx = db.transaction(
          (t) => {
            for (const key of txKeys) {
              if (scenario.write === null) t.del(key);
              else t.put(key, scenario.write);
            }
            t.put(other, 'b2');
          },
          { isolation: 'snapshot', retries: 0 },
        );
        await within(arrival, 20_000, 'the prepare');
        setFailpointGate('tx.after-prepare', null);
        // Fill the partition of the transaction's keys, large values first, until each size is
        // refused; under the snapshot each filler is deleted again, keeping a version.
        let next = 0;
        let refusals = 0;
        for (const size of scenario.fillerSizes) {
          for (;;) {
            const filler = fillers[next++]!;
            try {
              await db.put(filler, Buffer.alloc(size, 2));
              if (snapshot !== null) await db.del(filler);
            } catch (error) {
              expect(codeOf(error)).toBe('ERR_PARTITION_FULL');
              refusals++;
              break;
            }
          }
        }
        expect(refusals).toBe(scenario.fillerSizes.length);
        release();
        await within(tx, 20_000, 'the commit');
        // The owner applied the decision and goes on serving.
        await within(db.put(other, 'b3'), 20_000, 'a later put');
        const expectCommitted = (reader: Database): void => {
          for (const key of txKeys) {
            if (scenario.write === null) expect(reader.get(key)).toBeUndefined();
            else expect(Buffer.from(reader.get(key) ?? []).equals(scenario.write)).toBe(true);
          }
        };
        expectCommitted(db);
        if (snapshot !== null) {
          for (const key of txKeys) {
            if (scenario.before === null) expect(snapshot.get(key)).toBeUndefined();
            else expect(Buffer.from(snapshot.get(key) ?? []).equals(scenario.before)).toBe(true);
          }
          snapshot.release();
        }
        await db.close();
        db = null;
        // The log replays. A known gap: the replay inserts a committed transaction's writes where
        // its decision is logged, not where its intents were installed, and checks them against the
        // bound of a fresh insert; in a partition filled to its last pages meanwhile that can refuse
        // with ERR_PARTITION_FULL, asking for a larger partitionBytesMax, which then opens it whole.
        db = await open(dir, opened).catch(async (error: unknown) => {
          expect(codeOf(error)).toBe('ERR_PARTITION_FULL');
          expect(String(error)).toContain('open with a larger partitionBytesMax');
          return open(dir, { ...opened, partitionBytesMax: 2 * opened.partitionBytesMax });
        });
        expectCommitted(db);
        expect(db.getString(other)).toBe('b3');
      } finally {
        await db?.close();
      }
    });
  }
});

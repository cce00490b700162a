/**
 * Through open(): a cross-partition transaction is held prepared (the 'tx.after-prepare' gate) while
 * ordinary writes fill the partition of its key, each refused with ERR_PARTITION_FULL once full; then
 * it commits. Its decision, applied at the owner's next pass, used to need pages the fillers had
 * taken: the owner stopped (every later write ERR_WORKER_CRASHED), and in the put case the log no
 * longer fit the partition, so the database would not open again with the same options. Staging now
 * holds the decision's pages (test/decision-pages.test.ts): the fillers are refused earlier, the
 * decision applies, and the database serves and reopens.
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

describe('a decision applied after its partition filled', () => {
  for (const mode of ['delete under a snapshot', 'put'] as const) {
    it(`commits a held ${mode}, and the database serves and reopens`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ldb-decision-pages-'));
      dirs.push(dir);
      let db: Database | null = await open(dir, options);
      try {
        const keys = await keyPicker(2);
        const [target, ...fillers] = keys.samePartition('a-', 400);
        const key = target!;
        const other = keys
          .differentPartitions('b-', 2)
          .find((k) => keys.partitionOf(k) !== keys.partitionOf(key))!;
        await db.put(key, Buffer.alloc(30_000, 1));
        await db.put(other, 'b');
        const deleting = mode === 'delete under a snapshot';
        const snapshot = deleting ? db.snapshot() : null;
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
            if (deleting) t.del(key);
            else t.put(key, Buffer.alloc(20_000, 3));
            t.put(other, 'b2');
          },
          { isolation: 'snapshot', retries: 0 },
        );
        await within(arrival, 20_000, 'the prepare');
        setFailpointGate('tx.after-prepare', null);
        // Fill the partition of `key` with puts (and, under the snapshot, deletes that keep versions),
        // large ones first, until each size is refused.
        let next = 0;
        let refusals = 0;
        for (const size of [30_000, 8_000, 2_000, 500, 50]) {
          for (;;) {
            const filler = fillers[next++]!;
            try {
              await db.put(filler, Buffer.alloc(size, 2));
              if (deleting) await db.del(filler);
            } catch (error) {
              expect(codeOf(error)).toBe('ERR_PARTITION_FULL');
              refusals++;
              break;
            }
          }
        }
        expect(refusals).toBe(5);
        release();
        await within(tx, 20_000, 'the commit');
        // The owner applied the decision and goes on serving.
        await within(db.put(other, 'b3'), 20_000, 'a later put');
        const expectCommitted = (reader: Database): void => {
          if (deleting) expect(reader.get(key)).toBeUndefined();
          else expect(Buffer.from(reader.get(key) ?? []).equals(Buffer.alloc(20_000, 3))).toBe(true);
        };
        expectCommitted(db);
        if (snapshot !== null) {
          expect(Buffer.from(snapshot.get(key) ?? []).equals(Buffer.alloc(30_000, 1))).toBe(true);
          snapshot.release();
        }
        await db.close();
        db = null;
        // The log replays within the same partitionBytesMax.
        db = await open(dir, options);
        expectCommitted(db);
        expect(db.getString(other)).toBe('b3');
      } finally {
        await db?.close();
      }
    });
  }
});

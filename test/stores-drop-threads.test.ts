/**
 * A store dropped on one thread is dropped for a Store held on another: an attached worker thread
 * keeps its Store of a store the main thread drops (and makes again under the same name), and every
 * method of it, and of the views and batches that take it, then fails with ERR_STORE_DROPPED, never
 * reading or writing the new store's entries. Writes in flight while the drop runs either land
 * before it (and are deleted with the store) or are deleted again by the writer: no entry is ever
 * left under the dropped id. The protocol's write check is also tested alone, with a drop that
 * commits while a write is in flight, deterministically.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import { encodeRecord, recordKey } from '../src/main/stores/catalog-records.js';
import { prefixSuccessor, storePrefix } from '../src/main/stores/store-keys.js';
import { StoreLiveness } from '../src/main/stores/store-liveness.js';
import type { StoreDropInput, StoreDropReply } from './fixtures/store-drop-worker.js';
import { codeOf, rejection, within } from './support/async.js';
import { startTsWorker, WorkerMailbox } from './support/ts-worker.js';

type Database = Awaited<ReturnType<typeof open>>;

const raceRounds = 4;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function openDatabase(): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'ldb-stores-drop-'));
  dirs.push(dir);
  return open(dir, { partitions: 4, workers: 2, durability: 'none' });
}

/** The keys left under store id `id`, the catalog's view aside: after a drop there must be none. */
function keysUnder(db: Database, id: number): number {
  const prefix = storePrefix(id);
  const bounds = {
    lower: prefix,
    lowerInclusive: true,
    upper: prefixSuccessor(prefix),
    upperInclusive: false,
    reverse: false,
    limit: Number.POSITIVE_INFINITY,
  };
  return [...db.rangeWithin(bounds)].length;
}

function startWorker(
  db: Database,
  name: string,
  mode: StoreDropInput['mode'],
): WorkerMailbox<StoreDropReply> {
  const input: StoreDropInput = { handle: db.share(), name, mode, inFlight: 16 };
  const worker = startTsWorker(new URL('./fixtures/store-drop-worker.ts', import.meta.url), input);
  return new WorkerMailbox<StoreDropReply>(worker, `${mode} worker`);
}

describe('a store dropped on another thread', () => {
  it('fails every use of a stale Store on an attached thread with ERR_STORE_DROPPED', async () => {
    const db = await openDatabase();
    let mailbox: WorkerMailbox<StoreDropReply> | null = null;
    try {
      const old = await db.store<string, string>('tmp', { keyEncoding: 'utf8', valueEncoding: 'json' });
      await old.put('k', 'old');
      mailbox = startWorker(db, 'tmp', 'stale');
      const ready = await within(mailbox.next('ready'), 60_000, 'the worker opened the store');
      expect(ready.id).toBe(old.id);
      await db.dropStore('tmp');
      const renewed = await db.store<string, string>('tmp', { keyEncoding: 'utf8', valueEncoding: 'json' });
      expect(renewed.id).toBeGreaterThan(old.id);
      await renewed.put('k', 'new');
      mailbox.worker.postMessage({ type: 'go' });
      const reply = await within(mailbox.next('stale-codes'), 60_000, 'the worker used its stale Store');
      const methods = Object.keys(reply.codes);
      expect(methods.length).toBe(15);
      for (const method of methods) expect(reply.codes[method], method).toBe('ERR_STORE_DROPPED');
      // Opening the name again on the worker gives the new store, with the main thread's entry only.
      expect(reply.reopenedId).toBe(renewed.id);
      expect(reply.reopened).toEqual([['k', 'new']]);
      expect(renewed.get('k')).toBe('new');
      expect(renewed.count()).toBe(1);
      expect(keysUnder(db, old.id), 'nothing written under the dropped id').toBe(0);
      // The thread that dropped it knows at once, as before.
      expect(codeOf(await rejection(old.put('k', 'x')))).toBe('ERR_STORE_DROPPED');
    } finally {
      await mailbox?.worker.terminate();
      await db.close();
    }
  });

  it(`leaves nothing under the dropped id when writes are in flight across the drop (${raceRounds} rounds)`, async () => {
    const db = await openDatabase();
    try {
      for (let round = 0; round < raceRounds; round++) {
        const name = `race-${round}`;
        const mine = await db.store(name);
        const mailbox = startWorker(db, name, 'race');
        try {
          await within(mailbox.next('ready'), 60_000, `round ${round}: the worker opened the store`);
          // Drop once the worker is writing steadily: its writes are then in flight all the time.
          await within(
            (async () => {
              while (mine.count() < 100) await new Promise((resolve) => setTimeout(resolve, 2));
            })(),
            60_000,
            `round ${round}: the worker wrote 100 entries`,
          );
          await db.dropStore(name);
          const renewed = await db.store(name);
          await renewed.put('w0', 'main');
          const done = await within(mailbox.next('race-done'), 60_000, `round ${round}: the worker stopped`);
          console.log(`round ${round}: ${done.succeeded} writes succeeded before the drop was seen`);
          expect(done.succeeded).toBeGreaterThan(0);
          expect(done.firstFailure).toBe('ERR_STORE_DROPPED');
          expect(done.laterCodes).toEqual(Array(5).fill('ERR_STORE_DROPPED'));
          expect(keysUnder(db, mine.id), `round ${round}: nothing left under the dropped id`).toBe(0);
          expect([...renewed.range()].map(([key, value]) => [key.toString(), value.toString()])).toEqual([
            ['w0', 'main'],
          ]);
        } finally {
          await mailbox.worker.terminate();
        }
      }
    } finally {
      await db.close();
    }
  });
});

describe('the write check alone', () => {
  it('deletes what a write put when the store was dropped while it was in flight', async () => {
    const name = 'solo';
    let drops = 0;
    let record: Buffer | undefined = Buffer.from(encodeRecord({ id: 7, name }));
    const deleted: string[] = [];
    const source = {
      readKey: (key: Uint8Array) =>
        Buffer.from(key).equals(Buffer.from(recordKey(name))) ? record : undefined,
      storeDrops: () => drops,
      partitionOf: (key: Uint8Array) => key.length % 2,
      writeEntries: async (entries: { key: Uint8Array }[]) => {
        for (const entry of entries) deleted.push(Buffer.from(entry.key).toString());
      },
    };
    const live = new StoreLiveness(source, 7, name, drops);
    // Applied with no drop meanwhile: nothing to undo.
    await live.afterWrite(Promise.resolve(), [Buffer.from('a')]);
    expect(deleted).toEqual([]);
    // A drop commits (record gone, count bumped) while the write is in flight.
    const written = new Promise<void>((resolve) => setTimeout(resolve, 1));
    const checked = live.afterWrite(written, [Buffer.from('x'), Buffer.from('yy')]);
    record = undefined;
    drops++;
    expect(codeOf(await rejection(checked))).toBe('ERR_STORE_DROPPED');
    expect(deleted.sort()).toEqual(['x', 'yy']);
    expect(live.dropped).toBe(true);
    expect(() => live.assertLive()).toThrow(/ERR_STORE_DROPPED/);
  });

  it('keeps a store live when another store was dropped, reading its record once per drop', async () => {
    let drops = 0;
    let reads = 0;
    const record = Buffer.from(encodeRecord({ id: 3, name: 'kept' }));
    const source = {
      readKey: () => {
        reads++;
        return record;
      },
      storeDrops: () => drops,
      partitionOf: () => 0,
      writeEntries: async () => {},
    };
    const live = new StoreLiveness(source, 3, 'kept', drops);
    for (let i = 0; i < 10; i++) live.assertLive();
    expect(reads).toBe(0);
    drops++;
    for (let i = 0; i < 10; i++) live.assertLive();
    expect(reads).toBe(1);
    expect(live.dropped).toBe(false);
  });
});

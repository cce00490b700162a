/**
 * A full disk is an operating error, not a crash: on a real 4 MiB tmpfs filled to the last byte,
 * writes reject with ERR_DISK_FULL naming the log directory (ENOSPC as the cause) and change
 * nothing, the database keeps serving reads, checkpoint() rejects and settles leaving the previous
 * checkpoint in place, a cross-partition transaction rejects without leaving locks, close() succeeds,
 * and once space is freed writes succeed again without a reopen. A database opened on the full disk
 * serves reads, refuses writes in every thread, and takes them once space is freed, still without a
 * reopen. After a reopen every acknowledged
 * write is there and no refused one is. Writes are 16 KiB values, so each needs pages the full disk
 * does not have (a small write could still fit in the unused end of a page the log already holds).
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { attach, type Database, isLightningError, open } from '../src/index.js';
import { walDirectory } from '../src/storage/layout.js';
import {
  PartitionLog,
  readWal,
  recordTypeDecision,
  recordTypeOperation,
  WalWriter,
} from '../src/storage/wal/index.js';
import { setFailpointGate } from '../src/workers/failpoints.js';
import { rejection } from './support/async.js';
import { refuseFlagEnvName } from './support/refusing-file-layer.js';
import { fillDisk, mountTmpfs, type Tmpfs, tmpfsRefusal } from './support/tmpfs.js';

if (tmpfsRefusal !== null) console.log(`disk-full tests skipped: ${tmpfsRefusal}`);

const mounts: Tmpfs[] = [];
afterEach(() => {
  for (const mount of mounts.splice(0)) mount.unmount();
});

const bigValueBytes = 16 * 1024;
const keys = Array.from({ length: 16 }, (_, i) => `key-${i}`);

function big(tag: string): string {
  return tag.padEnd(bigValueBytes, '.');
}

function expectDiskFull(error: Error, walDirectory: string): void {
  expect(isLightningError(error, 'ERR_DISK_FULL'), String(error)).toBe(true);
  expect(error.message).toContain(walDirectory);
  expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
}

function checkpointFiles(directory: string): string[] {
  const files: string[] = [];
  const partitions = join(directory, 'partitions');
  for (const partition of readdirSync(partitions)) {
    for (const name of readdirSync(join(partitions, partition), { recursive: true }))
      files.push(`${partition}/${String(name)}`);
  }
  return files.sort();
}

describe.skipIf(tmpfsRefusal !== null)('a full disk (real tmpfs)', () => {
  it('refuses writes with ERR_DISK_FULL, stays readable, and writes again once space is freed', async () => {
    const mount = mountTmpfs(4 * 1024 * 1024);
    mounts.push(mount);
    const directory = join(mount.directory, 'db');
    const wal = join(directory, 'wal');
    const filler = join(mount.directory, 'filler');
    const expected = new Map<string, string>();
    let db: Database = await open(directory, { partitions: 2, workers: 2 });
    for (const key of keys) {
      await db.put(key, `old ${key}`);
      expected.set(key, `old ${key}`);
    }
    await db.checkpoint();
    const checkpointedFiles = checkpointFiles(directory);

    expect(fillDisk(filler)).toBeGreaterThan(0);
    let refused = 0;
    for (const key of keys.slice(0, 4)) {
      expectDiskFull(await rejection(db.put(key, big(`refused ${key}`))), wal);
      refused++;
    }
    expectDiskFull(
      await rejection(
        db.batch(keys.slice(5, 8).map((key) => ({ type: 'put', key, value: big(`refused ${key}`) }))),
      ),
      wal,
    );
    // Nothing refused is visible; every old value still reads.
    for (const [key, value] of expected) expect(db.getString(key)).toBe(value);

    // A cross-partition transaction on the full disk fails with the disk's error, not a conflict.
    const crossKeys = ['tx-a', 'tx-b', 'tx-c', 'tx-d'];
    const transactionError = await rejection(
      db.transaction((tx) => {
        for (const key of crossKeys) tx.put(key, big(`refused ${key}`));
      }),
    );
    expect(isLightningError(transactionError, 'ERR_DISK_FULL'), String(transactionError)).toBe(true);
    for (const key of crossKeys) expect(db.get(key)).toBeUndefined();

    // checkpoint() settles, rejecting, and leaves the previous checkpoint and manifest as they were.
    const checkpointError = await rejection(db.checkpoint());
    expect(isLightningError(checkpointError, 'ERR_DISK_FULL'), String(checkpointError)).toBe(true);
    expect((checkpointError.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(checkpointFiles(directory)).toEqual(checkpointedFiles);

    // Space returns: the same database writes again, without a reopen.
    rmSync(filler);
    for (const key of keys.slice(0, 8)) {
      await db.put(key, big(`new ${key}`));
      expected.set(key, big(`new ${key}`));
    }
    // The transaction's keys are free: no lock of the refused prepare was left behind.
    await db.transaction(
      (tx) => {
        for (const key of crossKeys) tx.put(key, `committed ${key}`);
      },
      { retries: 0 },
    );
    for (const key of crossKeys) expected.set(key, `committed ${key}`);
    await db.checkpoint();
    for (const [key, value] of expected) expect(db.getString(key)).toBe(value);

    // Full again: close() still succeeds, and open() still serves reads: read-only, its writes (an
    // attached thread's too) and checkpoints refused with ERR_DISK_FULL until space is freed.
    fillDisk(filler);
    expectDiskFull(await rejection(db.put('after-refill', big('refused'))), wal);
    await db.close();
    const onFullDisk = await open(directory);
    const attached = await attach(onFullDisk.share());
    expect(onFullDisk.stats().readOnly).toBe(true);
    expect(attached.stats().readOnly).toBe(true);
    for (const [key, value] of expected) expect(onFullDisk.getString(key)).toBe(value);
    for (const refusal of [
      await rejection(onFullDisk.put('after-refill', 'x')),
      await rejection(attached.put('after-refill', 'x')),
      await rejection(onFullDisk.transaction((tx) => tx.put('after-refill', 'x'))),
      await rejection(onFullDisk.checkpoint()),
    ]) {
      expect(isLightningError(refusal, 'ERR_DISK_FULL'), String(refusal)).toBe(true);
      expect(refusal.message).toContain('once space is freed');
    }
    // Another reader beside it: a read-only open takes no lock and writes nothing.
    const reader = await open(directory, { readOnly: true });
    for (const [key, value] of expected) expect(reader.getString(key)).toBe(value);
    await reader.close();

    // Space returns: the same database (and the attached thread) writes again, without a reopen.
    rmSync(filler);
    let refusedAfterFreeing = 0;
    for (;;) {
      const outcome = await onFullDisk.put('after-space', 'written').then(
        () => null,
        (error: unknown) => error,
      );
      if (outcome === null) break;
      expect(isLightningError(outcome, 'ERR_DISK_FULL'), String(outcome)).toBe(true);
      // The database looks for space every second: a minute of refusals means it never will.
      expect(++refusedAfterFreeing).toBeLessThan(240);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expected.set('after-space', 'written');
    expect(onFullDisk.stats().readOnly).toBe(false);
    await attached.put('attached-after-space', big('attached'));
    expected.set('attached-after-space', big('attached'));
    await onFullDisk.transaction((tx) => tx.put('tx-after-space', 'committed'));
    expected.set('tx-after-space', 'committed');
    await onFullDisk.checkpoint();
    await onFullDisk.put('after-checkpoint', 'logged');
    expected.set('after-checkpoint', 'logged');
    // It holds the lock now: a second writer is refused.
    expect(isLightningError(await rejection(open(directory)), 'ERR_LOCKED')).toBe(true);
    await attached.close();
    await onFullDisk.close();

    db = await open(directory);
    for (const [key, value] of expected) expect(db.getString(key)).toBe(value);
    expect(db.get('after-refill')).toBeUndefined();
    await db.close();
    console.log(
      `writes refused ${refusedAfterFreeing} times after space was freed, before the database took them`,
    );
    console.log(`refused ${refused} puts, a batch and a transaction on the full disk`);
  });
});

describe.skipIf(tmpfsRefusal !== null)('the WAL writer on a full disk (real tmpfs)', () => {
  it('cuts a refused flush back to the last good offset and stays usable', async () => {
    const mount = mountTmpfs(1024 * 1024);
    mounts.push(mount);
    const dir = join(mount.directory, 'wal');
    const writer = await WalWriter.open(dir, { epoch: 1, worker: 0 });
    const log = new PartitionLog(writer, 3, 1);
    log.append(recordTypeOperation, [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')]);
    await writer.flush(true);
    const segment = writer.activeSegmentPath;
    const goodBytes = statSync(segment).size;
    const filler = join(mount.directory, 'filler');
    fillDisk(filler);

    // 64 KiB: more than the free end of the segment's last page, so part of it may land first.
    const mark = log.mark();
    log.append(recordTypeOperation, [Buffer.alloc(64 * 1024, 1)]);
    const refused = await rejection(writer.flush(true));
    expectDiskFull(refused, segment);
    expect(statSync(segment).size).toBe(goodBytes);
    expect(writer.segmentBytes).toBe(goodBytes);
    log.rollBack(mark);
    expect(log.nextLsn).toBe(4);

    rmSync(filler);
    log.append(recordTypeOperation, [Buffer.alloc(64 * 1024, 2)]);
    await writer.flush(true);
    await writer.close();
    const payloads: { lsn: number; first: number; bytes: number }[] = [];
    await readWal(dir, {
      partitions: new Map([[3, 1]]),
      onRecord: (record) => {
        payloads.push({ lsn: record.lsn, first: record.payload[0]!, bytes: record.payload.length });
      },
    });
    expect(payloads.map((p) => p.lsn)).toEqual([1, 2, 3, 4]);
    expect(payloads[3]).toEqual({ lsn: 4, first: 2, bytes: 64 * 1024 });
  });
});

/** Decision records per partition in the logs of `directory`. */
async function decisionRecords(directory: string, partitions: number): Promise<number> {
  let decisions = 0;
  await readWal(walDirectory(directory), {
    partitions: new Map(Array.from({ length: partitions }, (_, partition) => [partition, 1])),
    onRecord: (record) => {
      if (record.type === recordTypeDecision) decisions++;
    },
  });
  return decisions;
}

/**
 * The decision of a two-phase commit is durable in its coordinator's decision log before any
 * participant applies it; a participant's own decision record only lets the decision log go. When
 * the disk refuses a participant's decision record, the decision stays applied and visible (it is
 * durable where it counts), the record is logged again once the disk takes writes, and a database
 * closed before that recovers the outcome from the decision log. The disk is made full for the logs
 * only, through the file-layer seam, between PREPARE and the decision.
 */
describe('decision records on a full disk (file-layer seam)', () => {
  const layer = fileURLToPath(new URL('./support/refusing-file-layer.ts', import.meta.url));
  const keysOf = (tag: string): string[] => Array.from({ length: 8 }, (_, i) => `${tag}-${i}`);

  it('keeps a decided transaction whose participants could not log the decision', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ldb-decision-full-'));
    const directory = join(base, 'db');
    const flag = join(base, 'refuse');
    const previous = process.env[refuseFlagEnvName];
    process.env[refuseFlagEnvName] = flag;
    try {
      const options = { partitions: 2, workers: 2, fileLayer: layer };
      let db = await open(directory, options);
      setFailpointGate('tx.after-prepare', async () => writeFileSync(flag, ''));
      // Decided and published; both participants' decision records are refused.
      await db.transaction((tx) => {
        for (const key of keysOf('first')) tx.put(key, `first ${key}`);
      });
      setFailpointGate('tx.after-prepare', null);
      for (const key of keysOf('first')) expect(db.getString(key)).toBe(`first ${key}`);
      // The owners are alive and refuse plain writes with the disk's error.
      const refused = await rejection(db.put('plain', 'refused'));
      expect(isLightningError(refused, 'ERR_DISK_FULL'), String(refused)).toBe(true);
      await db.close();
      expect(await decisionRecords(directory, 2)).toBe(0);

      // Reopened with room: recovery takes the outcome from the decision log.
      rmSync(flag);
      db = await open(directory, options);
      for (const key of keysOf('first')) expect(db.getString(key)).toBe(`first ${key}`);
      expect(db.get('plain')).toBeUndefined();
      const recovered = await decisionRecords(directory, 2);
      expect(recovered).toBe(2);

      // Refused again, then room returns while the database stays open: the records are logged.
      setFailpointGate('tx.after-prepare', async () => writeFileSync(flag, ''));
      await db.transaction((tx) => {
        for (const key of keysOf('second')) tx.put(key, `second ${key}`);
      });
      setFailpointGate('tx.after-prepare', null);
      await sleep(200);
      rmSync(flag);
      await db.put('plain', 'accepted');
      for (
        let round = 0;
        round < 200 && (await decisionRecordsAfterSync(db, directory)) < recovered + 2;
        round++
      )
        await sleep(50);
      await db.close();
      expect(await decisionRecords(directory, 2)).toBe(recovered + 2);
      db = await open(directory, options);
      for (const key of keysOf('second')) expect(db.getString(key)).toBe(`second ${key}`);
      expect(db.getString('plain')).toBe('accepted');
      await db.close();
    } finally {
      setFailpointGate('tx.after-prepare', null);
      if (previous === undefined) delete process.env[refuseFlagEnvName];
      else process.env[refuseFlagEnvName] = previous;
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('a refused log write whose cut-back fails (file-layer seam)', () => {
  it('stops the owner as any other I/O error does, losing no acknowledged write', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ldb-cut-fails-'));
    const directory = join(base, 'db');
    const flag = join(base, 'refuse');
    const previous = process.env[refuseFlagEnvName];
    process.env[refuseFlagEnvName] = flag;
    try {
      const layer = fileURLToPath(new URL('./support/refusing-file-layer.ts', import.meta.url));
      const db = await open(directory, { partitions: 1, workers: 1, fileLayer: layer });
      await db.put('acknowledged', 'yes');
      writeFileSync(flag, 'cut-fails');
      // The log's end is unknown after a failed cut: the owner stops rather than write after it.
      const stopped = await rejection(db.put('refused', 'no'));
      expect(isLightningError(stopped, 'ERR_WORKER_CRASHED'), String(stopped)).toBe(true);
      expect(db.getString('acknowledged')).toBe('yes');
      await db.close();
      rmSync(flag);
      const reopened = await open(directory, { fileLayer: layer });
      expect(reopened.getString('acknowledged')).toBe('yes');
      expect(reopened.get('refused')).toBeUndefined();
      await reopened.close();
    } finally {
      if (previous === undefined) delete process.env[refuseFlagEnvName];
      else process.env[refuseFlagEnvName] = previous;
      rmSync(base, { recursive: true, force: true });
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Decision records in the logs while `db` is open (its owners sync every pass in 'sync' mode). */
async function decisionRecordsAfterSync(db: Database, directory: string): Promise<number> {
  await db.put('sync-marker', String(Date.now()));
  return decisionRecords(directory, 2);
}

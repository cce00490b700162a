/**
 * Reading and damaging a database's log files from the outside, for the corruption tests: where each
 * partition's segments are, where each record starts, and a small model of what was written so that
 * a reopened database can be compared with it value by value.
 */

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { open } from '../../src/index.js';
import type { PartitionRouter } from '../../src/main/partition-router.js';
import { readManifest } from '../../src/storage/checkpoint/index.js';
import { partitionDirectory, walDirectory } from '../../src/storage/layout.js';
import {
  kRecordPayloadLength,
  parseSegmentFileName,
  readRecordLsn,
  readRecordPartition,
  recordBytes,
  recordHeaderBytes,
  segmentHeaderBytes,
} from '../../src/storage/wal/wal-format.js';

type Database = Awaited<ReturnType<typeof open>>;

export interface Segment {
  readonly path: string;
  readonly name: string;
  readonly epoch: number;
  readonly worker: number;
  readonly ordinal: number;
}

export interface RecordPosition {
  readonly offset: number;
  readonly end: number;
  readonly partition: number;
  readonly lsn: number;
  readonly payloadBytes: number;
}

/** Every segment of the database's logs, by run, worker and ordinal. */
export async function segmentsOf(dir: string): Promise<Segment[]> {
  const wal = walDirectory(dir);
  const names = await readdir(wal).catch(() => [] as string[]);
  const segments: Segment[] = [];
  for (const name of names) {
    const parsed = parseSegmentFileName(name);
    if (parsed !== null) segments.push({ path: join(wal, name), name, ...parsed });
  }
  return segments.sort((a, b) => a.epoch - b.epoch || a.worker - b.worker || a.ordinal - b.ordinal);
}

/** True if both segments belong to one log (one run's worker). */
export function sameLog(a: Segment, b: Segment): boolean {
  return a.epoch === b.epoch && a.worker === b.worker;
}

/** The newest segment of each log. */
export async function newestSegments(dir: string): Promise<Segment[]> {
  const segments = await segmentsOf(dir);
  return segments.filter((segment, i) => {
    const next = segments[i + 1];
    return next === undefined || !sameLog(segment, next);
  });
}

/** The records of an undamaged segment, walked by their length fields. */
export async function recordsOf(path: string): Promise<RecordPosition[]> {
  const bytes = await readFile(path);
  const records: RecordPosition[] = [];
  let offset = segmentHeaderBytes;
  while (offset + recordHeaderBytes <= bytes.length) {
    const payloadBytes = bytes.readUInt32LE(offset + kRecordPayloadLength);
    const end = offset + recordBytes(payloadBytes);
    if (end > bytes.length) break;
    const partition = readRecordPartition(bytes, offset);
    records.push({ offset, end, partition, lsn: readRecordLsn(bytes, offset), payloadBytes });
    offset = end;
  }
  return records;
}

/** Whether a checkpoint exists for the partition (another engineer's work: tests adapt, never rely). */
export async function hasCheckpoint(dir: string, partition: number): Promise<boolean> {
  // Every partition has a manifest from creation on: a checkpoint is a file the manifest names.
  const manifest = await readManifest(partitionDirectory(dir, partition));
  return (manifest?.checkpoints.length ?? 0) > 0;
}

/**
 * What was written: each key's current value, and per partition the writes in order. Writes are
 * issued one at a time and awaited, so each is exactly one log record of its partition, in order.
 */
export class WrittenData {
  readonly current = new Map<string, Buffer | undefined>();
  readonly perPartition: { key: string; value: Buffer | undefined; previous: Buffer | undefined }[][];
  readonly #router: PartitionRouter;

  constructor(router: PartitionRouter, partitions: number) {
    this.#router = router;
    this.perPartition = Array.from({ length: partitions }, () => []);
  }

  partitionOf(key: string): number {
    return this.#router.partitionOf(Buffer.from(key));
  }

  async put(db: Database, key: string, value: Buffer): Promise<void> {
    await db.put(key, value);
    this.#record(key, value);
  }

  async del(db: Database, key: string): Promise<void> {
    await db.del(key);
    this.#record(key, undefined);
  }

  #record(key: string, value: Buffer | undefined): void {
    this.perPartition[this.partitionOf(key)]!.push({ key, value, previous: this.current.get(key) });
    this.current.set(key, value);
  }

  /** Forgets the last write of a partition (a torn record the reopen cut): its key goes back. */
  dropLast(partition: number): void {
    const last = this.perPartition[partition]!.pop();
    if (last !== undefined) this.current.set(last.key, last.previous);
  }

  /** Every key whose value in `db` differs from what was written, as text. */
  mismatches(db: Database): string[] {
    const wrong: string[] = [];
    for (const [key, value] of this.current) {
      const found = db.get(key);
      const same = value === undefined ? found === undefined : found?.equals(value) === true;
      if (!same)
        wrong.push(`${key}: expected ${value?.length ?? 'absent'} B, found ${found?.length ?? 'absent'}`);
    }
    const live = [...this.current.values()].filter((value) => value !== undefined).length;
    const stored = [...db.range()].length;
    if (stored !== live) wrong.push(`the database holds ${stored} keys, ${live} were written`);
    return wrong;
  }
}

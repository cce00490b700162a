/**
 * The owner's pass stages operations before it applies them (durable, then visible), so a
 * transaction validated later in the same pass cannot see the staged writes in the tree: the staging
 * itself must report them, and its room check must count everything staged before.
 */
import { describe, expect, it } from 'vitest';
import { BTree } from '../src/shared-memory/index.js';
import { type BatchEntry, decodeOperation, encodeBatch } from '../src/shared-memory/ring/operation-codec.js';
import {
  type DecodedTransaction,
  isolationSerializable,
  isolationSnapshot,
  operationTxCommit,
} from '../src/shared-memory/ring/transaction-codec.js';
import { noReservation, type PassReservation, reserveForPass } from '../src/workers/pass-reservation.js';
import { PassStaging } from '../src/workers/pass-staging.js';

const text = new TextEncoder();
const put = (key: string, value = 'v'): BatchEntry => ({
  kind: 1,
  key: text.encode(key),
  value: text.encode(value),
});

function stagingWith(partition: number, entries: BatchEntry[]): PassStaging {
  const staging: PassStaging = new PassStaging(
    (operation): readonly BatchEntry[] =>
      decodeOperation(staging.bytesOf(operation), operation.start, operation.end).entries,
  );
  const bytes = new Uint8Array(1 << 12);
  encodeBatch(bytes, 0, partition, entries);
  const end = decodeOperation(bytes, 0, bytes.length).end;
  staging.add(partition, bytes, 0, end, 1, noReservation);
  return staging;
}

function part(partition: number, fields: Partial<DecodedTransaction>): DecodedTransaction {
  return {
    kind: operationTxCommit,
    isolation: isolationSerializable,
    partition,
    statusReference: 1,
    transactionId: 1,
    readTimestamp: 5,
    reads: [],
    ranges: [],
    writes: [],
    writesStart: 0,
    end: 0,
    ...fields,
  };
}

describe('PassStaging.touchesStaged', () => {
  it('reports a staged key that a later transaction reads, writes or scans, in its partition only', () => {
    const staging = stagingWith(3, [put('a'), put('m')]);
    expect(staging.touchesStaged(part(3, { reads: [text.encode('a')] }))).toBe(true);
    expect(staging.touchesStaged(part(3, { writes: [put('m')] }))).toBe(true);
    expect(staging.touchesStaged(part(3, { reads: [text.encode('b')] }))).toBe(false);
    expect(staging.touchesStaged(part(4, { reads: [text.encode('a')] })), 'other partition').toBe(false);
    const range = (lower: string, upper: string) => ({
      lower: text.encode(lower),
      lowerInclusive: true,
      upper: text.encode(upper),
      upperInclusive: false,
    });
    expect(staging.touchesStaged(part(3, { ranges: [range('l', 'n')] }))).toBe(true);
    expect(staging.touchesStaged(part(3, { ranges: [range('b', 'm')] })), 'upper bound excluded').toBe(false);
    // Snapshot isolation checks writes only.
    expect(staging.touchesStaged(part(3, { isolation: isolationSnapshot, reads: [text.encode('a')] }))).toBe(
      false,
    );
    expect(staging.touchesStaged(part(3, { isolation: isolationSnapshot, writes: [put('a')] }))).toBe(true);
    staging.clear();
    expect(staging.touchesStaged(part(3, { reads: [text.encode('a')] })), 'after clear').toBe(false);
  });
});

describe('reserveForPass', () => {
  it('counts what earlier operations of the pass staged, and fails before the partition is over-committed', () => {
    const pageSizeBytes = 4096;
    const tree = BTree.create({ pageSizeBytes, maxBytes: 64 * pageSizeBytes });
    const versions = BTree.create({ pageSizeBytes, maxBytes: 64 * pageSizeBytes });
    let staged: PassReservation | null = noReservation;
    let accepted = 0;
    let error: unknown = null;
    // 64 pages hold about 2,000 of these cells: nothing is applied, so only counting the earlier
    // operations of the pass refuses the later ones.
    for (let i = 0; i < 20_000 && error === null; i++) {
      try {
        staged = reserveForPass(tree, versions, [put(`key-${i}`)], staged, true);
        accepted++;
      } catch (caught) {
        error = caught;
      }
    }
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(20_000);
    expect((error as { code?: string }).code).toBe('ERR_PARTITION_FULL');
    expect(staged!.treePages).toBeLessThanOrEqual(tree.pagesAvailable());
    expect(staged!.versionPages).toBeLessThanOrEqual(versions.pagesAvailable());
    console.log(`reserveForPass: ${accepted} small puts staged in a 64-page partition`);
  });

  it('reserves near what a pass of many small puts takes, not a split per level for each', () => {
    const pageSizeBytes = 4096;
    const tree = BTree.create({ pageSizeBytes, maxBytes: 1024 * 1024 * 1024 });
    const versions = BTree.create({ pageSizeBytes, maxBytes: 1024 * 1024 * 1024 });
    const puts = 100_000;
    let staged: PassReservation | null = noReservation;
    let cellBytes = 0;
    for (let i = 0; i < puts; i++) {
      const entry = put(`key-${i}`);
      cellBytes += entry.key.length + (entry.value?.length ?? 0);
      staged = reserveForPass(tree, versions, [entry], staged, false);
    }
    // Each page holds well over 4096 / 4 bytes of these cells once cell headers and slots are
    // counted; a bound of a split per level per put would be hundreds of thousands of pages.
    const pagesFilled = Math.ceil(cellBytes / pageSizeBytes);
    expect(staged!.treePages).toBeLessThan(pagesFilled * 8);
    expect(staged!.versionPages).toBe(0);
    console.log(
      `reserveForPass: ${puts} small puts in one pass reserve ${staged!.treePages} pages (${pagesFilled} pages of key and value bytes)`,
    );
  });
});

/**
 * The process that loses power: opens a database through the fault file layer and writes until the
 * parent SIGKILLs it. Every operation is noted in the fault layer's journal before it is issued and
 * again when it settles, so the parent knows, at any record of the journal, what had been issued and
 * acknowledged (see workload.ts). "R" on file descriptor 3 tells the parent the database is open.
 *
 *   LIGHTNING_FAULT_JOURNAL=<file> node --import tsx test/power-loss/power-loss-child.ts \
 *     <dir> <seed> <mode> <workers> <gen>
 *
 * Operations: puts, deletes (of keys whose put was acknowledged, or that were there at the start),
 * batches and transactions over several partitions, now and then a checkpoint; up to 8 in flight.
 */
import { fileURLToPath } from 'node:url';
import { type BatchOperation, isLightningError, open } from '../../src/index.js';
import { fail, report } from '../crash/report-pipe.js';
import { noteInJournal } from '../support/fault-file-layer.js';
import { mulberry32 } from '../support/seeded-random.js';
import { issueNote, type OpEntry, type OpKind, powerLossPartitions, valueOfKey } from './workload.js';

const faultLayerPath = fileURLToPath(new URL('../support/fault-file-layer.ts', import.meta.url));
const inFlightMax = 8;
/** A child whose parent vanished must not write forever. */
const lifetimeMaxMs = 5 * 60 * 1000;

const [dir, seedText, mode, workersText, genText] = process.argv.slice(2);
if (dir === undefined || mode === undefined || (mode !== 'sync' && mode !== 'relaxed' && mode !== 'none'))
  fail('usage: power-loss-child.ts <dir> <seed> <sync|relaxed|none> <workers> <gen>');
const random = mulberry32(Number(seedText) >>> 0);
const gen = Number(genText);

const db = await open(dir, {
  partitions: powerLossPartitions,
  workers: Number(workersText),
  durability: mode,
  syncIntervalMs: 5 + (random() % 40),
  checkpointWalBytes: 1 << 16,
  fileLayer: faultLayerPath,
});
/** Keys that exist for sure (present at the start, or their put acknowledged) and no delete targets. */
const deletable: string[] = [];
for (const [key] of db.range()) deletable.push(key.toString('utf8'));
noteInJournal('R 0');
report('R\n');
setTimeout(() => fail('still running after its lifetime: the parent is gone'), lifetimeMaxMs).unref();

let seq = 0;
let inFlight = 0;

function takeDeletable(): string | null {
  if (deletable.length === 0) return null;
  const at = random() % deletable.length;
  const key = deletable[at]!;
  deletable[at] = deletable[deletable.length - 1]!;
  deletable.pop();
  return key;
}

function entriesFor(opSeq: number, count: number, deletes: number): OpEntry[] {
  const entries: OpEntry[] = [];
  for (let i = 0; i < count; i++) {
    const key = random() % 100 < deletes ? takeDeletable() : null;
    entries.push(key === null ? { type: 'p', key: `g${gen}.${opSeq}.${i}` } : { type: 'd', key });
  }
  return entries;
}

function run(kind: OpKind, entries: OpEntry[]): Promise<void> {
  switch (kind) {
    case 'put':
      return db.put(entries[0]!.key, valueOfKey(entries[0]!.key));
    case 'del':
      return db.del(entries[0]!.key);
    case 'batch':
      return db.batch(
        entries.map(
          (e): BatchOperation =>
            e.type === 'p'
              ? { type: 'put', key: e.key, value: valueOfKey(e.key) }
              : { type: 'del', key: e.key },
        ),
      );
    case 'tx':
      return db.transaction(async (tx) => {
        for (const e of entries) {
          // A read of each key first: the transaction validates what it read at commit.
          tx.get(e.key);
          if (e.type === 'p') tx.put(e.key, valueOfKey(e.key));
          else tx.del(e.key);
        }
      });
  }
}

function issue(): void {
  const opSeq = ++seq;
  const roll = random() % 100;
  if (roll < 2) {
    noteInJournal(`C ${opSeq}`);
    inFlight++;
    db.checkpoint().then(
      () => settle(),
      (error: unknown) => fail(`checkpoint failed: ${String(error)}`),
    );
    return;
  }
  const kind: OpKind = roll < 40 ? 'put' : roll < 52 ? 'del' : roll < 75 ? 'batch' : 'tx';
  let entries: OpEntry[];
  if (kind === 'del') {
    const key = takeDeletable();
    entries = key === null ? entriesFor(opSeq, 1, 0) : [{ type: 'd', key }];
  } else entries = entriesFor(opSeq, kind === 'put' ? 1 : 2 + (random() % 5), kind === 'put' ? 0 : 15);
  const actual: OpKind = kind === 'del' && entries[0]!.type === 'p' ? 'put' : kind;
  noteInJournal(issueNote(opSeq, actual, entries));
  inFlight++;
  run(actual, entries).then(
    () => {
      noteInJournal(`A ${opSeq}`);
      for (const e of entries) if (e.type === 'p' && random() % 4 === 0) deletable.push(e.key);
      settle();
    },
    (error: unknown) => {
      // A conflict is an outcome (the transaction did nothing); anything else is a failure of the run.
      if (!isLightningError(error, 'ERR_TX_CONFLICT')) fail(`operation ${opSeq} failed: ${String(error)}`);
      noteInJournal(`X ${opSeq} ERR_TX_CONFLICT`);
      // Its deletes did not happen: those keys may be deleted by a later operation.
      for (const e of entries) if (e.type === 'd') deletable.push(e.key);
      settle();
    },
  );
}

function settle(): void {
  inFlight--;
  fill();
}

function fill(): void {
  while (inFlight < inFlightMax) issue();
}

fill();

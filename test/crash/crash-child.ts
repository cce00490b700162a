/**
 * The process that gets killed: opens a database and writes to it until SIGKILL, reporting every
 * write it is about to issue and every acknowledgement to the parent, one line each, on file
 * descriptor 3 (the line format is in workload.ts).
 *
 *   node --import tsx test/crash/crash-child.ts <dir> <seed> [mode] [workers] [gen] [profile]
 *
 *   mode     durability: sync (default), relaxed or none. Under SIGKILL (not power loss) all three
 *            must keep every acknowledged write: the kernel keeps what write(2) took.
 *   workers  owner worker threads (default 2); the database always has 8 partitions
 *   gen      the generation stamped into every value (default 1): the parent gives each run its own
 *   profile  mixed (default): puts, deletes and batches of 0 B .. ~320 KB values, many in flight;
 *            huge: 5 MB values, one or two in flight, so that a kill lands inside a large write
 *
 * Reports are written with writeSync before anything else happens: the "issue" line reaches the pipe
 * before the write reaches the database, so the parent never finds a value it has not heard of, and
 * the "ack" line is written in the promise's reaction, before any later write is issued. A killed
 * process loses nothing it already wrote to a pipe.
 */
import { type BatchOperation, isLightningError, open } from '../../src/index.js';
import { createPartitionRouter } from '../../src/main/partition-router.js';
import { mulberry32 } from '../support/seeded-random.js';
import { fail, report } from './report-pipe.js';
import {
  encodeValue,
  formatIssue,
  type H32,
  keyCount,
  keyName,
  loadH32,
  type OpEntry,
  type OpKind,
} from './workload.js';

type Durability = 'sync' | 'relaxed' | 'none';
type Profile = 'mixed' | 'huge';

const partitions = 8;
const hugeValueBytes = 5 * 1024 * 1024;
/** A child whose parent vanished must not write forever: it stops on its own after this. */
const lifetimeMaxMs = 10 * 60 * 1000;

function parseArgs(): {
  dir: string;
  seed: number;
  mode: Durability;
  workers: number;
  gen: number;
  profile: Profile;
} {
  const [dir, seedText, modeText = 'sync', workersText = '2', genText = '1', profileText = 'mixed'] =
    process.argv.slice(2);
  if (dir === undefined || seedText === undefined) {
    fail('usage: crash-child.ts <dir> <seed> [mode] [workers] [gen] [profile]');
  }
  if (modeText !== 'sync' && modeText !== 'relaxed' && modeText !== 'none') fail(`bad mode ${modeText}`);
  if (profileText !== 'mixed' && profileText !== 'huge') fail(`bad profile ${profileText}`);
  const seed = Number(seedText);
  const workers = Number(workersText);
  const gen = Number(genText);
  if (!Number.isSafeInteger(seed)) fail(`bad seed ${seedText}`);
  if (!Number.isInteger(workers) || workers < 1) fail(`bad workers ${workersText}`);
  if (!Number.isInteger(gen) || gen < 1 || gen > 0xffff_ffff) fail(`bad gen ${genText}`);
  return { dir, seed: seed >>> 0, mode: modeText, workers, gen, profile: profileText };
}

/**
 * Which keys share a partition, from the router: batches within one partition are what the parent's
 * per-partition prefix check can judge (batches across partitions are checked by the bank crash test).
 */
async function partitionGroups(): Promise<{ groupOf: (key: number) => number[] }> {
  const router = await createPartitionRouter(partitions);
  const partitionOf = Array.from({ length: keyCount }, (_, k) => router.partitionOf(Buffer.from(keyName(k))));
  const groups = new Map<number, number[]>();
  partitionOf.forEach((partition, key) => {
    groups.set(partition, [...(groups.get(partition) ?? []), key]);
  });
  return { groupOf: (key) => groups.get(partitionOf[key]!)! };
}

async function main(): Promise<void> {
  const args = parseArgs();
  setTimeout(() => process.exit(4), lifetimeMaxMs).unref();
  const h32 = await loadH32();
  const random = mulberry32(args.seed);
  const below = (n: number): number => random() % n;
  const chance = (p: number): boolean => random() / 2 ** 32 < p;

  report('O\n');
  const db = await open(args.dir, { partitions, workers: args.workers, durability: args.mode });
  report('R\n');

  const discovery = await partitionGroups();
  let seq = 0;
  let inFlight = 0;
  let inFlightTarget = 1;

  /**
   * Value sizes: log-uniform from 28 B to 64 KiB (most values small, every size class present), a few
   * headerless ones under 28 B (down to 0 B), and a few of 64-128 KiB and 250-320 KiB: those travel
   * through the command ring in fragments and need many overflow pages.
   */
  function valueLength(): number {
    if (args.profile === 'huge') return chance(0.5) ? hugeValueBytes + below(4096) : below(4096);
    const r = random() / 2 ** 32;
    if (r < 0.04) return below(28);
    if (r < 0.955) return Math.floor(28 * (65536 / 28) ** (random() / 2 ** 32));
    if (r < 0.985) return 64 * 1024 + below(64 * 1024);
    return 250 * 1024 + below(70 * 1024);
  }

  function putEntry(key: number): OpEntry {
    return { key, length: valueLength() };
  }

  function entryOf(entry: OpEntry, opSeq: number, index: number): BatchOperation {
    const key = keyName(entry.key);
    if (entry.length === null) return { type: 'del', key };
    return { type: 'put', key, value: putValue(h32, entry, opSeq, index) };
  }

  function putValue(hash: H32, entry: OpEntry, opSeq: number, index: number): Buffer {
    return encodeValue(hash, {
      key: entry.key,
      gen: args.gen,
      seq: opSeq,
      entry: index,
      length: entry.length ?? 0,
    });
  }

  /** Chooses the next operation: its kind and entries. */
  function nextOperation(): { kind: OpKind; entries: OpEntry[] } {
    if (args.profile === 'huge') {
      // Huge values on a few keys, small writes around them so that batches of the log mix sizes.
      if (chance(0.5)) return { kind: 'p', entries: [putEntry(below(8))] };
      const key = 8 + below(keyCount - 8);
      if (chance(0.2)) return { kind: 'd', entries: [{ key, length: null }] };
      return { kind: 'p', entries: [{ key, length: below(4096) }] };
    }
    const r = random() / 2 ** 32;
    if (r < 0.55) return { kind: 'p', entries: [putEntry(below(keyCount))] };
    if (r < 0.67) return { kind: 'd', entries: [{ key: below(keyCount), length: null }] };
    if (r < 0.77) {
      // Several operations on one key: one partition by construction; only the last may be visible.
      const key = below(keyCount);
      const entries = Array.from({ length: 2 + below(3) }, () =>
        chance(0.25) ? { key, length: null } : putEntry(key),
      );
      return { kind: 'b', entries };
    }
    if (r < 0.91) {
      const group = discovery.groupOf(below(keyCount));
      if (group.length >= 2) {
        // Keys known to share a partition: a multi-key batch whose atomicity the parent can check.
        const count = Math.min(group.length, 2 + below(4));
        const keys: number[] = [];
        while (keys.length < count) {
          const key = group[below(group.length)]!;
          if (!keys.includes(key)) keys.push(key);
        }
        const entries = keys.map((key) => (chance(0.2) ? { key, length: null } : putEntry(key)));
        return { kind: 'b', entries };
      }
      if (r >= 0.8) return { kind: 'p', entries: [putEntry(below(keyCount))] };
    }
    return { kind: 'p', entries: [putEntry(below(keyCount))] };
  }

  function issueNext(): void {
    const opSeq = ++seq;
    if (opSeq % 64 === 1) {
      // The number in flight changes over the run: 1 (strictly sequential) up to 32 (group commit).
      inFlightTarget = args.profile === 'huge' ? 1 + below(2) : [1, 2, 4, 8, 16, 32][below(6)]!;
    }
    const { kind, entries } = nextOperation();
    // Build the values before reporting, so the report goes out right before the call.
    const operations = entries.map((entry, index) => entryOf(entry, opSeq, index));
    report(formatIssue(opSeq, kind, entries));
    let pending: Promise<void>;
    const first = operations[0]!;
    if (kind === 'p' && first.type === 'put') pending = db.put(first.key, first.value);
    else if (kind === 'd') pending = db.del(first.key);
    else pending = db.batch(operations);
    inFlight++;
    pending.then(
      () => {
        report(`A ${opSeq}\n`);
        inFlight--;
        pump();
      },
      (error: unknown) => {
        if (kind === 'b' && isLightningError(error, 'ERR_NOT_SUPPORTED')) {
          report(`X ${opSeq} ERR_NOT_SUPPORTED\n`);
          inFlight--;
          pump();
          return;
        }
        fail(`operation ${opSeq} (${kind}) failed: ${String(error)}`);
      },
    );
  }

  function pump(): void {
    while (inFlight < inFlightTarget) issueNext();
  }

  pump();
}

main().catch((error: unknown) =>
  fail(`crash child: ${error instanceof Error ? error.stack : String(error)}`),
);

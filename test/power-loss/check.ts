/**
 * The check of a database recovered from a simulated power loss against the workload's notes up to
 * the crash point. Pure: no I/O.
 *
 * Each key is written once and deleted at most once (workload.ts), so each entry of an operation is
 * evidence that the operation survived or did not:
 *   put K — K present: survived; K absent and no delete of K issued: lost (else undecided);
 *   del K — K present: lost; K absent: survived if K was there at the run's start (else undecided).
 * Then:
 *   - every key present was written by this run or was there at the start, with exactly its value;
 *     every key there at the start and never deleted is still there;
 *   - no operation is torn: its entries agree (a cross-partition batch or transaction all or nothing);
 *   - 'sync': no acknowledged operation lost; any mode: no rejected operation survived;
 *   - each partition a prefix of its order: an operation that survived has no lost operation on a
 *     common partition that was acknowledged before it was issued, nor (plain writes, which one
 *     thread's ring keeps in order) a lost plain write on its partition issued before it.
 */
import type { EntryType, OpKind, ParsedNote } from './workload.js';
import { valueOfKey } from './workload.js';

export interface NotedOp {
  readonly seq: number;
  readonly kind: OpKind;
  readonly entries: readonly { readonly type: EntryType; readonly key: string; readonly partition: number }[];
  /** Positions in the journal's notes. */
  readonly issuedAt: number;
  ackedAt: number | null;
  rejected: boolean;
}

/** The operations a list of notes describes, with each entry's partition. */
export function opsFromNotes(notes: readonly ParsedNote[], partitionOf: (key: string) => number): NotedOp[] {
  const ops = new Map<number, NotedOp>();
  notes.forEach((note, at) => {
    if (note.tag === 'I') {
      ops.set(note.seq, {
        seq: note.seq,
        kind: note.kind!,
        entries: note.entries!.map((e) => ({ ...e, partition: partitionOf(e.key) })),
        issuedAt: at,
        ackedAt: null,
        rejected: false,
      });
    } else if (note.tag === 'A') {
      const op = ops.get(note.seq);
      if (op !== undefined) op.ackedAt = at;
    } else if (note.tag === 'X') {
      const op = ops.get(note.seq);
      if (op !== undefined) op.rejected = true;
    }
  });
  return [...ops.values()];
}

type Outcome = 'survived' | 'lost' | 'torn' | 'undecided';

/** A cross-partition operation found applied in some partitions and not in others. */
export interface TornOp {
  readonly seq: number;
  readonly kind: OpKind;
  readonly acked: boolean;
  readonly survivedIn: number[];
  readonly lostIn: number[];
}

export interface PowerLossCheck {
  readonly problems: string[];
  /** Torn cross-partition operations, also listed in `problems`. */
  readonly torn: TornOp[];
  readonly stats: {
    ops: number;
    acked: number;
    survived: number;
    lost: number;
    ackedLost: number;
    undecided: number;
    keys: number;
  };
}

/** "tx 12 (partitions 0,2)": what kind of commit an operation took, for messages. */
function describeOp(op: NotedOp): string {
  const partitions = [...new Set(op.entries.map((e) => e.partition))].sort();
  return `${op.kind} ${op.seq} (partition${partitions.length > 1 ? 's' : ''} ${partitions.join(',')})`;
}

export function checkRecovered(
  ops: readonly NotedOp[],
  baseline: ReadonlySet<string>,
  observed: ReadonlyMap<string, Buffer>,
  mode: 'sync' | 'relaxed' | 'none',
): PowerLossCheck {
  const problems: string[] = [];
  const torn: TornOp[] = [];
  const created = new Set<string>();
  const deleted = new Set<string>();
  for (const op of ops) {
    for (const e of op.entries) (e.type === 'p' ? created : deleted).add(e.key);
  }
  for (const [key, value] of observed) {
    if (!baseline.has(key) && !created.has(key))
      problems.push(`key ${key} present but never written before the crash point`);
    else if (!value.equals(valueOfKey(key)))
      problems.push(`key ${key} holds ${value.length} B that are not its value`);
  }
  for (const key of baseline) {
    if (!deleted.has(key) && !observed.has(key))
      problems.push(`key ${key}, there at the start and never deleted, is gone`);
  }

  const outcomes = new Map<number, Outcome>();
  const lostPartitions = new Map<number, Set<number>>();
  const survivedPartitions = new Map<number, Set<number>>();
  const stats = {
    ops: ops.length,
    acked: 0,
    survived: 0,
    lost: 0,
    ackedLost: 0,
    undecided: 0,
    keys: observed.size,
  };
  for (const op of ops) {
    const survivedIn = new Set<number>();
    const lostIn = new Set<number>();
    for (const e of op.entries) {
      const present = observed.has(e.key);
      if (e.type === 'p') {
        if (present) survivedIn.add(e.partition);
        else if (!deleted.has(e.key)) lostIn.add(e.partition);
      } else if (present) lostIn.add(e.partition);
      else if (baseline.has(e.key)) survivedIn.add(e.partition);
    }
    const outcome: Outcome =
      survivedIn.size > 0 && lostIn.size > 0
        ? 'torn'
        : survivedIn.size > 0
          ? 'survived'
          : lostIn.size > 0
            ? 'lost'
            : 'undecided';
    outcomes.set(op.seq, outcome);
    lostPartitions.set(op.seq, lostIn);
    survivedPartitions.set(op.seq, survivedIn);
    const acked = op.ackedAt !== null;
    if (acked) stats.acked++;
    if (outcome === 'survived') stats.survived++;
    if (outcome === 'lost') stats.lost++;
    if (outcome === 'undecided') stats.undecided++;
    if (outcome === 'torn') {
      const entry: TornOp = {
        seq: op.seq,
        kind: op.kind,
        acked,
        survivedIn: [...survivedIn].sort(),
        lostIn: [...lostIn].sort(),
      };
      torn.push(entry);
      problems.push(
        `torn: ${op.kind} ${op.seq} (${acked ? 'acknowledged' : 'not acknowledged'}) applied in partition(s) ` +
          `${entry.survivedIn.join(',')} and not in ${entry.lostIn.join(',')}`,
      );
    }
    if (outcome === 'lost' && acked) {
      stats.ackedLost++;
      if (mode === 'sync') problems.push(`lost: ${op.kind} ${op.seq} was acknowledged in 'sync' and is gone`);
    }
    if (op.rejected && (outcome === 'survived' || outcome === 'torn'))
      problems.push(`${op.kind} ${op.seq} was rejected but its writes are there`);
  }

  // Prefixes, per partition.
  const byPartition = new Map<number, NotedOp[]>();
  for (const op of ops) {
    for (const partition of new Set(op.entries.map((e) => e.partition))) {
      byPartition.set(partition, [...(byPartition.get(partition) ?? []), op]);
    }
  }
  const plain = (op: NotedOp) => op.kind !== 'tx' && new Set(op.entries.map((e) => e.partition)).size === 1;
  // Judged by what each partition shows of an operation: a cross-partition one whose atomicity
  // failed (or that shows nothing decidable in a partition) is not inferred there from the others.
  const lostHere = (op: NotedOp, partition: number) => lostPartitions.get(op.seq)!.has(partition);
  const survivedHere = (op: NotedOp, partition: number) => survivedPartitions.get(op.seq)!.has(partition);
  for (const [partition, list] of byPartition) {
    // The first lost operation by acknowledgement, and the first lost plain write by issue.
    let lostAcked: NotedOp | null = null;
    let lostPlain: NotedOp | null = null;
    for (const op of list) {
      if (!lostHere(op, partition)) continue;
      if (op.ackedAt !== null && (lostAcked === null || op.ackedAt < lostAcked.ackedAt!)) lostAcked = op;
      if (plain(op) && (lostPlain === null || op.issuedAt < lostPlain.issuedAt)) lostPlain = op;
    }
    for (const op of list) {
      if (!survivedHere(op, partition)) continue;
      if (lostAcked !== null && lostAcked.ackedAt! < op.issuedAt) {
        problems.push(
          `hole in partition ${partition}: ${op.kind} ${op.seq} survived, but ${describeOp(lostAcked)}, ` +
            `acknowledged before it was issued, is ${outcomes.get(lostAcked.seq)}`,
        );
        break;
      }
      if (lostPlain !== null && plain(op) && lostPlain.issuedAt < op.issuedAt) {
        problems.push(
          `hole in partition ${partition}: ${op.kind} ${op.seq} survived, but ${describeOp(lostPlain)}, ` +
            'a plain write to the same partition issued before it, is lost',
        );
        break;
      }
    }
  }
  return { problems, torn, stats };
}

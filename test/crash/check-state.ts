/**
 * The check of a reopened database against the crash model. Pure: no I/O.
 *
 * What a recovered database must show, key by key: the state left by the key's last acknowledged
 * operation, or by an operation on that key issued later (in flight at the kill). Deletes count: a
 * key whose last acknowledged operation deleted it is absent or holds a later write. Every value must
 * be exactly the bytes some write produced (no torn value, no intermediate state of a batch, no value
 * of another key). Then, per partition, the stronger property a write-ahead log gives: the operations
 * that survived are a prefix of that partition's operations in issue order (one thread's writes to a
 * partition are applied and logged in order, and recovery replays a prefix of the log). A prefix
 * includes every acknowledged operation, and a batch is inside it or not, so a half-applied batch or
 * a lost write in the middle (a hole) fails it. Batches are also checked on their own, for a clearer
 * message: all of a batch's effects or none, over its keys that no later operation touched.
 */
import type { PartitionRouter } from '../../src/main/partition-router.js';
import { absent, type CrashModel, crashPartitions, type KeyVersion, type ModelOp } from './crash-model.js';
import { decodeValue, describeSpec, encodeValue, type H32, keyCount, keyName } from './workload.js';

/** One possible state of a key: the baseline (index 0) or what one operation left there. */
interface Candidate {
  readonly version: KeyVersion;
  /** The operation's sequence number; 0 for the baseline. */
  readonly seq: number;
  readonly op: ModelOp | null;
  readonly acked: boolean;
}

export interface CheckStats {
  keys: number;
  /** Operations issued by the child in this run, acknowledged, rejected (batches across partitions). */
  issued: number;
  acked: number;
  rejected: number;
  /** Issued, neither acknowledged nor rejected when the kill came. */
  inFlight: number;
  /** Acknowledged operations the recovered prefix of their partition was shown to contain. */
  ackedVerified: number;
  /** Keys found at their last acknowledged state, and keys found at a later, unacknowledged one. */
  keysAtLastAck: number;
  keysAtLaterWrite: number;
  /** Batches of two or more keys whose all-or-nothing could be decided, and those found applied. */
  batchesChecked: number;
  batchesApplied: number;
  /** In-flight operations the recovered prefixes show were applied, and shown lost. */
  inFlightApplied: number;
  inFlightLost: number;
}

export interface CheckResult {
  readonly problems: string[];
  readonly stats: CheckStats;
  /** Each key's recovered state, as a version (the next baseline). */
  readonly found: KeyVersion[];
}

function sameVersion(a: KeyVersion, b: KeyVersion): boolean {
  if (a.kind === 'absent' || b.kind === 'absent') return a.kind === b.kind;
  const x = a.spec;
  const y = b.spec;
  return (
    x.key === y.key && x.gen === y.gen && x.seq === y.seq && x.entry === y.entry && x.length === y.length
  );
}

export function describeVersion(version: KeyVersion): string {
  return version.kind === 'absent' ? 'absent' : describeSpec(version.spec);
}

/**
 * Whether the bytes read back (`undefined` = absent) are exactly `version`. Headed values are
 * compared by header first, so only a likely match pays for regenerating the whole value.
 */
export function holds(h32: H32, observed: Buffer | undefined, version: KeyVersion): boolean {
  if (version.kind === 'absent') return observed === undefined;
  if (observed === undefined || observed.length !== version.spec.length) return false;
  const decoded = decodeValue(h32, observed);
  if (decoded.ok && !sameVersion({ kind: 'value', spec: decoded.spec }, version)) return false;
  return encodeValue(h32, version.spec).equals(observed);
}

/** What operation `op` leaves under `key`: the last of its entries for that key. */
function effectOn(op: ModelOp, gen: number, key: number): KeyVersion | null {
  let effect: KeyVersion | null = null;
  op.entries.forEach((entry, index) => {
    if (entry.key !== key) return;
    effect =
      entry.length === null
        ? absent
        : { kind: 'value', spec: { key, gen, seq: op.seq, entry: index, length: entry.length } };
  });
  return effect;
}

/**
 * Checks what a reopened database returned for every key (`observed[k]`, undefined = absent) against
 * the model. Pure: no I/O. Returns every problem found, not just the first.
 */
export function checkRecoveredState(
  model: CrashModel,
  observed: readonly (Buffer | undefined)[],
  router: PartitionRouter,
  h32: H32,
): CheckResult {
  const problems: string[] = [];
  const partitionOfKey = Array.from({ length: keyCount }, (_, k) =>
    router.partitionOf(Buffer.from(keyName(k))),
  );
  const stats: CheckStats = {
    keys: keyCount,
    issued: model.ops.length,
    acked: 0,
    rejected: 0,
    inFlight: 0,
    ackedVerified: 0,
    keysAtLastAck: 0,
    keysAtLaterWrite: 0,
    batchesChecked: 0,
    batchesApplied: 0,
    inFlightApplied: 0,
    inFlightLost: 0,
  };

  // Operations that cannot have changed anything: batches the engine rejected, and batches across
  // partitions (which it must reject) whose outcome the kill cut off. The engine's verdicts are
  // checked against the routing function on the way.
  const partitionOfOp = new Map<ModelOp, number>();
  const live: ModelOp[] = [];
  for (const op of model.ops) {
    const parts = new Set(op.entries.map((entry) => partitionOfKey[entry.key]!));
    const spans = parts.size > 1;
    if (op.status === 'acked') stats.acked++;
    if (op.status === 'rejected') stats.rejected++;
    if (spans && op.status === 'acked') {
      problems.push(
        `operation ${op.seq}: a batch across partitions ${[...parts].join(', ')} was acknowledged`,
      );
    }
    if (!spans && op.status === 'rejected') {
      problems.push(
        `operation ${op.seq}: a batch within partition ${[...parts][0]} was rejected (${op.rejectedWith})`,
      );
    }
    if (op.status === 'rejected' || spans) continue;
    if (op.status === 'issued') stats.inFlight++;
    partitionOfOp.set(op, [...parts][0]!);
    live.push(op);
  }

  // Each key's candidates in order (baseline first), which of them the database holds, and which of
  // those are allowed (at or after the last acknowledged one).
  const candidatesOf: Candidate[][] = [];
  const allowedOf: number[][] = [];
  const found: KeyVersion[] = [];
  for (let key = 0; key < keyCount; key++) {
    const candidates: Candidate[] = [{ version: model.baseline[key]!, seq: 0, op: null, acked: true }];
    for (const op of live) {
      const effect = effectOn(op, model.gen, key);
      if (effect !== null)
        candidates.push({ version: effect, seq: op.seq, op, acked: op.status === 'acked' });
    }
    let lastAcked = 0;
    candidates.forEach((candidate, index) => {
      if (candidate.acked) lastAcked = index;
    });
    const matching: number[] = [];
    candidates.forEach((candidate, index) => {
      if (holds(h32, observed[key], candidate.version)) matching.push(index);
    });
    const allowed = matching.filter((index) => index >= lastAcked);
    candidatesOf.push(candidates);
    allowedOf.push(allowed);
    if (allowed.length === 0) {
      problems.push(explainKey(h32, model, key, observed[key], candidates, lastAcked, matching, live));
      found.push(model.baseline[key]!);
      continue;
    }
    found.push(candidates[allowed[0]!]!.version);
    if (allowed.includes(lastAcked)) stats.keysAtLastAck++;
    else stats.keysAtLaterWrite++;
  }

  checkPrefixes(live, partitionOfOp, partitionOfKey, candidatesOf, allowedOf, problems, stats);
  checkBatches(live, candidatesOf, allowedOf, problems, stats);
  return { problems, stats, found };
}

/** Says what is wrong with a key whose recovered state is none of its allowed candidates. */
function explainKey(
  h32: H32,
  model: CrashModel,
  key: number,
  observed: Buffer | undefined,
  candidates: readonly Candidate[],
  lastAcked: number,
  matching: readonly number[],
  live: readonly ModelOp[],
): string {
  const expected = candidates[lastAcked]!;
  const ackedText = `its last acknowledged state is ${describeVersion(expected.version)}${
    expected.op === null ? ' (the verified baseline)' : ` (operation ${expected.seq})`
  }`;
  const later = candidates.length - 1 - lastAcked;
  const laterText = later > 0 ? `, or one of ${later} later in-flight operation(s)` : '';
  if (matching.length > 0) {
    const older = candidates[matching.at(-1)!]!;
    const holding = older.version.kind === 'absent' ? 'is absent' : `holds ${describeVersion(older.version)}`;
    return `LOST ACKNOWLEDGED WRITE: key ${key} ${holding} (an older state), but ${ackedText}${laterText}`;
  }
  if (observed === undefined) {
    return `LOST ACKNOWLEDGED WRITE: key ${key} is absent, but ${ackedText}${laterText}`;
  }
  const decoded = decodeValue(h32, observed);
  if (!decoded.ok) return `key ${key}: bad value read back: ${decoded.reason}; ${ackedText}${laterText}`;
  const spec = decoded.spec;
  let what = 'a value no operation of the model wrote';
  if (spec.key !== key) what = `the value of ANOTHER key (${describeSpec(spec)})`;
  else if (spec.gen === model.gen) {
    const op = model.ops.find((candidate) => candidate.seq === spec.seq);
    if (op === undefined) what = 'a value of an operation never reported as issued';
    else if (op.status === 'rejected') what = `a value of operation ${op.seq}, which was REJECTED`;
    else if (!live.includes(op)) what = `a value of batch ${op.seq}, which spans partitions and cannot apply`;
    else if (op.kind === 'b')
      what = `an INTERMEDIATE entry of batch ${op.seq} (not its last entry for this key)`;
  } else if (spec.gen < model.gen) what = 'a value of an earlier run that the last verification did not find';
  return `key ${key} holds ${describeSpec(spec)}: ${what}; ${ackedText}${laterText}`;
}

/**
 * Per partition, finds a cut C (a sequence number) such that every operation of the partition with
 * seq <= C is applied and none after: each key's recovered state must be what the key's last
 * operation at or before C left. C must also reach the partition's last acknowledged operation.
 */
function checkPrefixes(
  live: readonly ModelOp[],
  partitionOfOp: ReadonlyMap<ModelOp, number>,
  partitionOfKey: readonly number[],
  candidatesOf: readonly Candidate[][],
  allowedOf: readonly number[][],
  problems: string[],
  stats: CheckStats,
): void {
  for (let partition = 0; partition < crashPartitions; partition++) {
    const ops = live.filter((op) => partitionOfOp.get(op) === partition);
    let lastAckedSeq = 0;
    for (const op of ops) if (op.status === 'acked') lastAckedSeq = op.seq;
    // Each key of the partition allows C in the union of [seq of a matching candidate, seq of the
    // next candidate). Keys with an unexplained state were reported already; skip them here.
    const constraints: { key: number; intervals: [number, number][] }[] = [];
    for (let key = 0; key < keyCount; key++) {
      if (partitionOfKey[key] !== partition || allowedOf[key]!.length === 0) continue;
      const candidates = candidatesOf[key]!;
      const intervals = allowedOf[key]!.map((index): [number, number] => [
        candidates[index]!.seq,
        candidates[index + 1]?.seq ?? Number.POSITIVE_INFINITY,
      ]);
      constraints.push({ key, intervals });
    }
    const fits = (cut: number): boolean =>
      constraints.every(({ intervals }) => intervals.some(([lo, hi]) => lo <= cut && cut < hi));
    // If any cut fits, the smallest one is the lower end of some interval (or lastAckedSeq).
    const points = new Set<number>([lastAckedSeq]);
    for (const { intervals } of constraints)
      for (const [lo] of intervals) if (lo >= lastAckedSeq) points.add(lo);
    const cuts = [...points].sort((a, b) => a - b).filter(fits);
    if (cuts.length === 0) {
      const detail = constraints
        .slice(0, 24)
        .map(
          ({ key, intervals }) => `key ${key}: ${intervals.map(([lo, hi]) => `[${lo},${hi})`).join(' or ')}`,
        )
        .join('; ');
      problems.push(
        `partition ${partition}: the recovered state is NOT A PREFIX of the partition's operations ` +
          `(a lost write in the middle, or half a batch); its last acknowledged operation is ${lastAckedSeq}. ` +
          `Cuts each key allows: ${detail}`,
      );
      continue;
    }
    // Every acknowledged operation is at or below lastAckedSeq <= cut: inside the recovered prefix.
    stats.ackedVerified += ops.filter((op) => op.status === 'acked').length;
    // The cut is known to lie between the smallest fitting point and the furthest any fitting point
    // reaches (the nearest end of the intervals that hold it); in-flight operations outside that
    // range are known to be applied or lost.
    const reach = (cut: number): number =>
      Math.min(
        ...constraints.map(({ intervals }) =>
          Math.max(...intervals.filter(([lo, hi]) => lo <= cut && cut < hi).map(([, hi]) => hi)),
        ),
      );
    const minCut = cuts[0]!;
    const maxCut = Math.max(...cuts.map((cut) => reach(cut) - 1));
    for (const op of ops) {
      if (op.status !== 'issued') continue;
      if (op.seq <= minCut) stats.inFlightApplied++;
      else if (op.seq > maxCut) stats.inFlightLost++;
    }
  }
}

/** All of a batch's effects or none, over its keys that no later operation touched. */
function checkBatches(
  live: readonly ModelOp[],
  candidatesOf: readonly Candidate[][],
  allowedOf: readonly number[][],
  problems: string[],
  stats: CheckStats,
): void {
  for (const op of live) {
    if (op.kind !== 'b') continue;
    const keys = [...new Set(op.entries.map((entry) => entry.key))];
    if (keys.length < 2) continue;
    const applied: number[] = [];
    const notApplied: number[] = [];
    for (const key of keys) {
      const candidates = candidatesOf[key]!;
      const index = candidates.findIndex((candidate) => candidate.op === op);
      const allowed = allowedOf[key]!;
      if (index !== candidates.length - 1 || allowed.length === 0) continue; // Overwritten later, or reported.
      const isIt = allowed.includes(index);
      const before = allowed.some((i) => i < index);
      if (isIt && !before) applied.push(key);
      else if (!isIt) notApplied.push(key);
    }
    if (applied.length + notApplied.length < 2) continue;
    stats.batchesChecked++;
    if (applied.length > 0 && notApplied.length > 0) {
      problems.push(
        `HALF A BATCH: batch ${op.seq} (${op.status}) is visible under keys ${applied.join(', ')} but not under ${notApplied.join(', ')}`,
      );
    } else if (applied.length > 0) stats.batchesApplied++;
  }
}

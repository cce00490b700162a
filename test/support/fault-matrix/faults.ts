/**
 * The rows and columns of the fault matrix: every file and directory of a database (its targets),
 * and every fault that can be done to one, with where it lands and what the database must then do.
 */
import { cp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  kRecordLsn,
  kRecordPartition,
  kRecordPayload,
  kRecordPayloadLength,
  recordBytes,
  segmentHeaderBytes,
} from '../../../src/storage/wal/wal-format.js';
import type { Variant } from './fixture.js';

export type TargetKind =
  | 'metadata'
  | 'manifest'
  | 'checkpoint'
  | 'segment'
  | 'wal-dir'
  | 'partition-dir'
  | 'other';

export interface Target {
  readonly kind: TargetKind;
  /** Its path relative to the database directory, with '/' separators. */
  readonly path: string;
  readonly directory: boolean;
  /** The partition whose directory holds it, or null. */
  readonly partition: number | null;
}

/** Where a record sits in a segment, and whether replay still needs it (past its checkpoint). */
interface RecordSpan {
  readonly offset: number;
  readonly bytes: number;
  readonly payloadBytes: number;
  readonly needed: boolean;
}

export type FaultName =
  | 'delete'
  | 'truncate-0'
  | 'truncate-mid'
  | 'flip-mid'
  | 'flip-covered'
  | 'flip-needed'
  | 'older'
  | 'foreign';

export const faultNames: readonly FaultName[] = [
  'delete',
  'truncate-0',
  'truncate-mid',
  'flip-mid',
  'flip-covered',
  'flip-needed',
  'older',
  'foreign',
];

/** What a cell may do: open with everything, or refuse with ERR_CORRUPTION naming the damage. */
export type Outcome = 'a' | 'b';

/** A fault planned against one target: how to do it, and what is acceptable after it. */
export interface PlannedFault {
  /** Why the cell does not apply, or null when it does. */
  readonly notApplicable: string | null;
  readonly expected: readonly Outcome[];
  /** Damages the copy of the database at `directory`. */
  readonly apply: (directory: string) => Promise<void>;
}

const partitionDirectoryPattern = /^\d{4}$/;

/** Every file and directory of the database worth damaging, in a stable order (LOCK is not one). */
export async function listTargets(directory: string): Promise<Target[]> {
  const targets: Target[] = [{ kind: 'metadata', path: 'LIGHTNING.json', directory: false, partition: null }];
  const walNames = (await readdir(join(directory, 'wal')).catch(() => [] as string[])).sort();
  for (const name of walNames)
    targets.push({
      kind: name.endsWith('.log') ? 'segment' : 'other',
      path: `wal/${name}`,
      directory: false,
      partition: null,
    });
  targets.push({ kind: 'wal-dir', path: 'wal', directory: true, partition: null });
  const partitionNames = (await readdir(join(directory, 'partitions')).catch(() => [] as string[])).sort();
  for (const name of partitionNames.filter((n) => partitionDirectoryPattern.test(n))) {
    const partition = Number(name);
    for (const file of (await readdir(join(directory, 'partitions', name))).sort()) {
      const kind = file === 'MANIFEST.json' ? 'manifest' : file.endsWith('.ckp') ? 'checkpoint' : 'other';
      targets.push({ kind, path: `partitions/${name}/${file}`, directory: false, partition });
    }
    targets.push({ kind: 'partition-dir', path: `partitions/${name}`, directory: true, partition });
  }
  const top = await readdir(directory);
  for (const name of top.filter((n) => !['LIGHTNING.json', 'wal', 'partitions', 'LOCK'].includes(n)).sort())
    targets.push({
      kind: 'other',
      path: name,
      directory: (await stat(join(directory, name))).isDirectory(),
      partition: null,
    });
  return targets;
}

/** Every record of a segment file, read by the documented on-disk layout (wal-format.ts). */
function recordSpans(bytes: Buffer, checkpointStarts: ReadonlyMap<number, number>): RecordSpan[] {
  const spans: RecordSpan[] = [];
  let offset = segmentHeaderBytes;
  while (offset + kRecordPayload <= bytes.length) {
    const payloadBytes = bytes.readUInt32LE(offset + kRecordPayloadLength);
    const size = recordBytes(payloadBytes);
    if (offset + size > bytes.length) break;
    const lsn = Number(bytes.readBigUInt64LE(offset + kRecordLsn));
    const partition = bytes.readUInt32LE(offset + kRecordPartition);
    const needed = lsn >= (checkpointStarts.get(partition) ?? 1);
    spans.push({ offset, bytes: size, payloadBytes, needed });
    offset += size;
  }
  return spans;
}

/** Where a flip lands inside a record: the middle of its payload, so only the checksum can catch it. */
function payloadMiddle(span: RecordSpan): number {
  return span.offset + kRecordPayload + Math.floor(span.payloadBytes / 2);
}

async function flipByteAt(file: string, offset: number): Promise<void> {
  const bytes = await readFile(file);
  bytes[offset] = bytes[offset]! ^ 0x5a;
  await writeFile(file, bytes);
}

async function replaceWith(target: string, source: string): Promise<void> {
  await rm(target, { recursive: true, force: true });
  await cp(source, target, { recursive: true });
}

async function sameContents(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.isDirectory() || sb.isDirectory()) {
    if (!sa.isDirectory() || !sb.isDirectory()) return false;
    const [na, nb] = await Promise.all([readdir(a), readdir(b)]);
    const names = na.filter((n) => n !== 'LOCK').sort();
    if (
      names.join('/') !==
      nb
        .filter((n) => n !== 'LOCK')
        .sort()
        .join('/')
    )
      return false;
    for (const name of names) if (!(await sameContents(join(a, name), join(b, name)))) return false;
    return true;
  }
  return (await readFile(a)).equals(await readFile(b));
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

const notApplicable = (reason: string): PlannedFault => ({
  notApplicable: reason,
  expected: [],
  apply: async () => {},
});

/**
 * Plans `fault` against `target` of `variant` (`other` is the other variant, whose files are the
 * "foreign" copies): null when the fault has no meaning for that kind of target (a directory cannot
 * be truncated), a not-applicable cell when it has meaning but nothing to do here (no older copy).
 */
export async function planFault(
  variant: Variant,
  other: Variant,
  target: Target,
  fault: FaultName,
): Promise<PlannedFault | null> {
  const pristine = join(variant.directory, target.path);
  const at = (directory: string) => join(directory, target.path);
  const refuse: Outcome[] = ['b'];
  if (fault === 'delete')
    return {
      notApplicable: null,
      expected: await refuseUnlessCovered(variant, target),
      apply: (d) => rm(at(d), { recursive: true }),
    };
  if (fault === 'older' || fault === 'foreign') {
    if (fault === 'foreign' && target.kind !== 'metadata' && target.kind !== 'manifest') return null;
    const source = join(fault === 'older' ? variant.olderDirectory : other.directory, target.path);
    const from = fault === 'older' ? 'older copy' : `copy in the ${other.name} database`;
    if (!(await exists(source))) return notApplicable(`no ${from}`);
    if (await sameContents(source, pristine)) return notApplicable(`the ${from} is identical`);
    // An older copy may be accepted only if it loses nothing; a foreign one never.
    return {
      notApplicable: null,
      expected: fault === 'older' ? ['a', 'b'] : refuse,
      apply: (d) => replaceWith(at(d), source),
    };
  }
  if (target.directory) return null;
  const size = (await stat(pristine)).size;
  if (fault === 'truncate-0' || fault === 'truncate-mid') {
    const length = fault === 'truncate-0' ? 0 : Math.floor(size / 2);
    const expected = target.kind === 'segment' ? await refuseIfCutNeeded(variant, pristine, length) : refuse;
    return { notApplicable: null, expected, apply: (d) => truncate(at(d), length) };
  }
  if (fault === 'flip-mid') {
    if (target.kind === 'segment') return null;
    return { notApplicable: null, expected: refuse, apply: (d) => flipByteAt(at(d), Math.floor(size / 2)) };
  }
  if (target.kind !== 'segment') return null;
  const spans = recordSpans(await readFile(pristine), variant.checkpointStarts);
  if (fault === 'flip-covered') {
    // Records below every checkpoint are the segment's prefix before its first needed record.
    const firstNeeded = spans.findIndex((span) => span.needed);
    const covered = firstNeeded === -1 ? spans : spans.slice(0, firstNeeded);
    if (covered.length === 0) return notApplicable('no record below the checkpoints');
    const offset = payloadMiddle(covered[Math.floor(covered.length / 2)]!);
    return { notApplicable: null, expected: ['a'], apply: (d) => flipByteAt(at(d), offset) };
  }
  const needed = spans.filter((span) => span.needed);
  if (needed.length === 0) return notApplicable('no record past the checkpoints');
  const offset = payloadMiddle(needed[Math.floor(needed.length / 2)]!);
  return { notApplicable: null, expected: refuse, apply: (d) => flipByteAt(at(d), offset) };
}

/** A deleted segment or log directory is harmless only if every record in it is below a checkpoint. */
async function refuseUnlessCovered(variant: Variant, target: Target): Promise<Outcome[]> {
  if (target.kind === 'segment') return refuseIfCutNeeded(variant, join(variant.directory, target.path), 0);
  if (target.kind !== 'wal-dir') return ['b'];
  const wal = join(variant.directory, target.path);
  for (const name of (await readdir(wal)).filter((n) => n.endsWith('.log'))) {
    if ((await refuseIfCutNeeded(variant, join(wal, name), 0))[0] === 'b') return ['b'];
  }
  return ['a'];
}

/** Cutting a segment at `length` bytes must be refused if a record replay needs ends past the cut. */
async function refuseIfCutNeeded(variant: Variant, file: string, length: number): Promise<Outcome[]> {
  const spans = recordSpans(await readFile(file), variant.checkpointStarts);
  return spans.some((span) => span.needed && span.offset + span.bytes > length) ? ['b'] : ['a'];
}

/** A predicate: does a message name this target, so an operator knows what is damaged? */
export function namesTarget(target: Target, message: string): boolean {
  const partitionNamed = (p: number) =>
    message.includes(`partitions/${String(p).padStart(4, '0')}`) ||
    new RegExp(`partition 0*${p}\\b`).test(message);
  switch (target.kind) {
    case 'manifest':
      return message.includes('MANIFEST.json') && partitionNamed(target.partition!);
    case 'partition-dir':
      return partitionNamed(target.partition!);
    case 'wal-dir':
      return /(^|[/\s])wal([/\s:]|$)|wal-[0-9a-f]+/.test(message);
    default:
      return message.includes(basename(target.path));
  }
}

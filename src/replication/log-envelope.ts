import { xxh32 } from '../main/xxh32.js';
import { LightningError } from '../shared-memory/errors.js';

/**
 * The replication log's unit: an envelope carries one batch of one partition's log records (its
 * payload, opaque here) with the partition's sequence range and the sequence just before it, so a
 * reader can check that batches chain without a gap or an overlap; a published message holds one or
 * more envelopes (log-message.ts). Every number is little-endian; sequences are the partition's
 * replication sequences (its records counted 1, 2, 3, ... across every leader, 0 meaning "no
 * record"; see leader-shipping.ts), u64 on the wire and safe integers in memory.
 *
 *     0  magic "LRPL"                    4 bytes
 *     4  format version                  u32 (1)
 *     8  term                            u64 (the publishing leader's lease term, >= 1)
 *    16  partition                       u32
 *    20  payload length                  u32
 *    24  previous sequence               u64 (the last sequence of the partition's previous batch)
 *    32  first sequence                  u64 (= previous + 1)
 *    40  last sequence                   u64 (>= first)
 *    48  payload checksum                u32 = xxh32(payload, seed 0)
 *    52  header checksum                 u32 = xxh32(bytes 0..51, seed 0)
 *    56  payload                         `payload length` bytes
 *
 * Magic and version come first and are checked before anything else, so "another format"
 * (ERR_FORMAT_VERSION) is told from "damaged" (ERR_CORRUPTION). The header has its own checksum so a
 * damaged length or sequence is reported as such rather than as a payload mismatch. NATS checks its
 * own storage too; these checksums cover what it cannot see: the bytes between our encoder and our
 * decoder, in whichever client, server or disk they travelled.
 */

export const envelopeMagic = 0x4c_50_52_4c; // "LRPL" read as a little-endian u32
export const envelopeFormatVersion = 1;
export const envelopeHeaderBytes = 56;

export const kEnvelopeMagic = 0;
export const kEnvelopeFormatVersion = 4;
export const kEnvelopeTerm = 8;
export const kEnvelopePartition = 16;
export const kEnvelopePayloadLength = 20;
export const kEnvelopePreviousSequence = 24;
export const kEnvelopeFirstSequence = 32;
export const kEnvelopeLastSequence = 40;
export const kEnvelopePayloadChecksum = 48;
export const kEnvelopeHeaderChecksum = 52;

/**
 * Largest payload of one envelope. NATS's default max_payload is 1 MiB and its servers warn above
 * 8 MiB; a group commit larger than this is split into several envelopes of the same partition, which
 * chain like any others. The publisher also checks the server's own max_payload, which may be lower.
 */
export const envelopePayloadBytesMax = 8 * 1024 * 1024 - envelopeHeaderBytes;

/** One batch of one partition's log records, as published and as read back. */
export interface LogEnvelope {
  readonly term: number;
  readonly partition: number;
  readonly previousSequence: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
  readonly payload: Uint8Array;
}

function badArgument(why: string): never {
  throw new LightningError('ERR_BAD_ARGUMENT', `log envelope: ${why}`);
}

/** Checks the fields every envelope must satisfy; `fail` decides the error (bad argument or damage). */
function checkFields(envelope: Omit<LogEnvelope, 'payload'>, fail: (why: string) => never): void {
  const { term, partition, previousSequence, firstSequence, lastSequence } = envelope;
  if (!Number.isSafeInteger(term) || term < 1) fail(`term must be a safe integer >= 1, got ${term}`);
  if (!Number.isInteger(partition) || partition < 0 || partition > 0xffff_ffff) {
    fail(`partition must be an integer in 0..2^32-1, got ${partition}`);
  }
  if (!Number.isSafeInteger(previousSequence) || previousSequence < 0) {
    fail(`previous sequence must be a safe integer >= 0, got ${previousSequence}`);
  }
  if (firstSequence !== previousSequence + 1) {
    fail(`first sequence ${firstSequence} does not follow previous sequence ${previousSequence}`);
  }
  if (!Number.isSafeInteger(lastSequence) || lastSequence < firstSequence) {
    fail(`last sequence ${lastSequence} is not a safe integer >= first sequence ${firstSequence}`);
  }
}

/** The envelope's bytes: header and payload in one buffer, ready to publish. */
export function encodeLogEnvelope(envelope: LogEnvelope): Uint8Array {
  checkFields(envelope, badArgument);
  const { payload } = envelope;
  if (!(payload instanceof Uint8Array)) badArgument('payload must be a Uint8Array');
  if (payload.length > envelopePayloadBytesMax) {
    badArgument(`payload of ${payload.length} bytes is over the limit of ${envelopePayloadBytesMax}`);
  }
  const bytes = new Uint8Array(envelopeHeaderBytes + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(kEnvelopeMagic, envelopeMagic, true);
  view.setUint32(kEnvelopeFormatVersion, envelopeFormatVersion, true);
  view.setBigUint64(kEnvelopeTerm, BigInt(envelope.term), true);
  view.setUint32(kEnvelopePartition, envelope.partition, true);
  view.setUint32(kEnvelopePayloadLength, payload.length, true);
  view.setBigUint64(kEnvelopePreviousSequence, BigInt(envelope.previousSequence), true);
  view.setBigUint64(kEnvelopeFirstSequence, BigInt(envelope.firstSequence), true);
  view.setBigUint64(kEnvelopeLastSequence, BigInt(envelope.lastSequence), true);
  view.setUint32(kEnvelopePayloadChecksum, xxh32(payload), true);
  view.setUint32(kEnvelopeHeaderChecksum, xxh32(bytes.subarray(0, kEnvelopeHeaderChecksum)), true);
  bytes.set(payload, envelopeHeaderBytes);
  return bytes;
}

/** A u64 field as a number; above 2^53 it cannot be a sequence or a term, so it is damage. */
function readSafeU64(view: DataView, offset: number, fail: (why: string) => never): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`u64 at byte ${offset} is above 2^53`);
  return Number(value);
}

/**
 * Decodes and verifies an envelope: ERR_FORMAT_VERSION for another version, ERR_CORRUPTION (naming
 * `where`, e.g. the stream sequence) for anything damaged. The payload is a view into `bytes`.
 */
export function decodeLogEnvelope(bytes: Uint8Array, where: string): LogEnvelope {
  const fail = (why: string): never => {
    throw new LightningError('ERR_CORRUPTION', `log envelope at ${where}: ${why}`);
  };
  if (bytes.length < envelopeHeaderBytes) fail(`${bytes.length} bytes, shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(kEnvelopeMagic, true) !== envelopeMagic) fail('not a log envelope (bad magic)');
  const version = view.getUint32(kEnvelopeFormatVersion, true);
  if (version !== envelopeFormatVersion) {
    throw new LightningError(
      'ERR_FORMAT_VERSION',
      `log envelope at ${where}: format version ${version}; this build reads version ${envelopeFormatVersion}`,
    );
  }
  if (view.getUint32(kEnvelopeHeaderChecksum, true) !== xxh32(bytes.subarray(0, kEnvelopeHeaderChecksum))) {
    fail('header checksum mismatch');
  }
  const payloadLength = view.getUint32(kEnvelopePayloadLength, true);
  if (payloadLength !== bytes.length - envelopeHeaderBytes) {
    fail(`header says ${payloadLength} payload bytes, the message has ${bytes.length - envelopeHeaderBytes}`);
  }
  // A plain Uint8Array view whatever `bytes` is (a client may hand over a Buffer).
  const payload = new Uint8Array(bytes.buffer, bytes.byteOffset + envelopeHeaderBytes, payloadLength);
  if (view.getUint32(kEnvelopePayloadChecksum, true) !== xxh32(payload)) fail('payload checksum mismatch');
  const envelope: LogEnvelope = {
    term: readSafeU64(view, kEnvelopeTerm, fail),
    partition: view.getUint32(kEnvelopePartition, true),
    previousSequence: readSafeU64(view, kEnvelopePreviousSequence, fail),
    firstSequence: readSafeU64(view, kEnvelopeFirstSequence, fail),
    lastSequence: readSafeU64(view, kEnvelopeLastSequence, fail),
    payload,
  };
  checkFields(envelope, fail);
  return envelope;
}

/**
 * The message id under which an envelope is published, for JetStream's duplicate detection: the same
 * batch retried by the same leader gets the same id (the server answers "duplicate" with the stored
 * sequence instead of storing it twice). The term is in it because the server checks ids BEFORE the
 * expected sequence: were a deposed leader's batch to share an id with the new leader's batch of the
 * same range, the server would answer "duplicate" instead of rejecting it, and the deposed leader
 * would believe a batch stored that never was. The payload checksum keeps two different batches of one
 * range (which a bug could produce) apart too.
 */
export function envelopeMessageId(envelope: LogEnvelope): string {
  const checksum = xxh32(envelope.payload).toString(16).padStart(8, '0');
  return `t${envelope.term}.p${envelope.partition}.${envelope.firstSequence}-${envelope.lastSequence}.${checksum}`;
}

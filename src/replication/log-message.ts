import { xxh32 } from '../main/xxh32.js';
import { LightningError } from '../shared-memory/errors.js';
import {
  decodeLogEnvelope,
  encodeLogEnvelope,
  envelopeHeaderBytes,
  kEnvelopePayloadLength,
  type LogEnvelope,
} from './log-envelope.js';

/**
 * One published message of the replication log: one or more envelopes back to back (each carries
 * its own length, version and checksums, see log-envelope.ts). A leader's group commit touches
 * several partitions, and the owners' batches waiting while a publish is in flight are all sent in
 * the next one: one fenced publish, one round trip to a majority of the servers, for all of them.
 * A message of one envelope is exactly that envelope's bytes, so a reader of single envelopes reads
 * it unchanged.
 */
export function encodeLogMessage(envelopes: readonly LogEnvelope[]): Uint8Array {
  if (envelopes.length === 0) throw new LightningError('ERR_BAD_ARGUMENT', 'a log message needs an envelope');
  const parts = envelopes.map(encodeLogEnvelope);
  if (parts.length === 1) return parts[0]!;
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

/** The envelopes of a message, each decoded and verified; see decodeLogEnvelope for the errors. */
export function decodeLogMessage(bytes: Uint8Array, where: string): LogEnvelope[] {
  const envelopes: LogEnvelope[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < envelopeHeaderBytes) {
      throw new LightningError(
        'ERR_CORRUPTION',
        `log message at ${where}: ${bytes.length - offset} bytes left at byte ${offset}, shorter than an envelope header`,
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, envelopeHeaderBytes);
    // The length is trusted only once the envelope's header checksum passed, in decodeLogEnvelope.
    const end = Math.min(
      bytes.length,
      offset + envelopeHeaderBytes + view.getUint32(kEnvelopePayloadLength, true),
    );
    envelopes.push(
      decodeLogEnvelope(bytes.subarray(offset, end), `${where} (envelope ${envelopes.length + 1})`),
    );
    offset = end;
  }
  if (envelopes.length === 0) throw new LightningError('ERR_CORRUPTION', `log message at ${where}: empty`);
  return envelopes;
}

/**
 * The message id of a message, for JetStream's duplicate detection: a retry of the same message by
 * the same leader has the same id, so the server answers "duplicate" instead of storing it twice.
 * It names the term (the server checks ids before the expected sequence: a deposed leader's message
 * must never be taken for its successor's), the stream sequence the publisher expects to follow (one
 * message per position per term), and the bytes' checksum (a different message at the same position
 * after a failed attempt is not a duplicate: it is rejected by the expectation instead).
 */
export function logMessageId(term: number, afterSequence: number, bytes: Uint8Array): string {
  const checksum = xxh32(bytes).toString(16).padStart(8, '0');
  return `t${term}.a${afterSequence}.${checksum}`;
}

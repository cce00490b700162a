import { readU64, writeU64 } from '../shared-memory/ring/transaction-codec.js';

/**
 * Payloads of the write-ahead log records of two-phase commits (record types 2 and 3):
 *
 *   prepare:  transaction id u64 | the participant's writes, one batch operation (operation-codec.ts)
 *   decision: transaction id u64 | 1 committed, 0 aborted
 *
 * A participant logs its prepare before answering the coordinator, and a decision once it applied
 * the decision. Recovery applies a prepare's writes when it meets its commit decision, drops them on
 * an abort, and asks the coordinators' decision logs about any prepare left without a decision.
 */
export function encodePrepareRecord(transactionId: number, batch: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + batch.length);
  writeU64(new DataView(out.buffer), 0, transactionId);
  out.set(batch, 8);
  return out;
}

export function encodeDecisionRecord(transactionId: number, committed: boolean): Uint8Array {
  const out = new Uint8Array(9);
  writeU64(new DataView(out.buffer), 0, transactionId);
  out[8] = committed ? 1 : 0;
  return out;
}

export function recordTransactionId(payload: Uint8Array): number {
  return readU64(new DataView(payload.buffer, payload.byteOffset, payload.byteLength), 0);
}

export function decisionCommitted(payload: Uint8Array): boolean {
  return payload[8] === 1;
}

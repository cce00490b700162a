/**
 * What the parent knows about a directory under test: each key's state as the last verification
 * found it (the baseline), and the operations the crash child of the current run reported, with
 * their outcome (issued, acknowledged, rejected). Built from the child's report lines (workload.ts).
 */
import { keyCount, type OpEntry, type OpKind, parseEntries, type ValueSpec } from './workload.js';

export const crashPartitions = 8;

/** A key's state: absent, or the value one entry of one operation wrote. */
export type KeyVersion = { readonly kind: 'absent' } | { readonly kind: 'value'; readonly spec: ValueSpec };

export const absent: KeyVersion = { kind: 'absent' };

export type OpStatus = 'issued' | 'acked' | 'rejected';

export interface ModelOp {
  readonly seq: number;
  readonly kind: OpKind;
  readonly entries: readonly OpEntry[];
  status: OpStatus;
  rejectedWith: string | null;
}

/** The model of one directory: the verified baseline, and the operations of the run since. */
export class CrashModel {
  /** Each key's state as the last verification found it (and the parent's writes after it). */
  readonly baseline: KeyVersion[] = Array.from({ length: keyCount }, () => absent);
  /** The generation of the current run's values, and its operations in issue (= sequence) order. */
  gen = 0;
  ops: ModelOp[] = [];
  readonly #bySeq = new Map<number, ModelOp>();
  /** Whether the current run's child reported that recovery finished and writes started. */
  ready = false;

  beginRun(gen: number): void {
    this.gen = gen;
    this.ops = [];
    this.#bySeq.clear();
    this.ready = false;
  }

  /** Takes one report line of the child (format in workload.ts). */
  applyLine(line: string): void {
    const [tag, seqText, third, fourth] = line.split(' ');
    if (tag === 'O') return;
    if (tag === 'R') {
      this.ready = true;
      return;
    }
    if (tag === 'F') throw new Error(`the child failed: ${line}`);
    const seq = Number(seqText);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new Error(`bad report line ${JSON.stringify(line)}`);
    if (tag === 'I') {
      if ((third !== 'p' && third !== 'd' && third !== 'b') || fourth === undefined) {
        throw new Error(`bad issue line ${JSON.stringify(line)}`);
      }
      const last = this.ops.at(-1);
      if (last !== undefined && last.seq >= seq) throw new Error(`issue lines out of order at ${line}`);
      const op: ModelOp = {
        seq,
        kind: third,
        entries: parseEntries(fourth),
        status: 'issued',
        rejectedWith: null,
      };
      this.ops.push(op);
      this.#bySeq.set(seq, op);
      return;
    }
    const op = this.#bySeq.get(seq);
    if (op === undefined) throw new Error(`report for an operation never issued: ${line}`);
    if (op.status !== 'issued') throw new Error(`a second outcome for operation ${seq}: ${line}`);
    if (tag === 'A') op.status = 'acked';
    else if (tag === 'X') {
      op.status = 'rejected';
      op.rejectedWith = third ?? '?';
    } else throw new Error(`bad report line ${JSON.stringify(line)}`);
  }
}

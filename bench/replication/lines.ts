/** The JSON lines bench:replication's children print on stdout, one object per line. */

export type PutMode = 'replicated' | 'sync';

/** The timed window starts now: the parent samples the NATS servers' and its own CPU. */
export interface StartLine {
  kind: 'start';
}

/** A put just resolved on the leader; the parent times the follower reaching `position`. */
export interface ProbeLine {
  kind: 'probe';
  position: number;
  /** Epoch ms (performance.timeOrigin + performance.now()): the same clock in every process. */
  atMs: number;
}

export interface PutResult {
  kind: 'result';
  mode: PutMode;
  concurrency: number;
  puts: number;
  seconds: number;
  /** The leader process's CPU (every thread: main, owner workers, the NATS client) over the timed window. */
  cpuSeconds: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Owner batches (one log write and fdatasync each) and operations of the timed window. */
  ownerBatches: number;
  ownerOperations: number;
  /** Replicated only: stream messages and the owner batches they carried over the timed window. */
  messagesPublished: number | null;
  batchesPublished: number | null;
  publishRetries: number | null;
  /** Replicated only: the leader's stream position after the last put. */
  position: number | null;
  /** Rows of the default store after warm-up and timed puts (must be their sum: the keys are distinct). */
  entries: number;
  /** Keys read back on the leader whose value differs from the one written, or is missing. */
  spotMismatches: number;
  loadAverage1m: number;
}

export type PutChildLine = StartLine | ProbeLine | PutResult;

/** The failover child: its leader is open and writing. */
export interface ReadyLine {
  kind: 'ready';
  term: number;
}

/** The failover child's put of key index `i` resolved (was acknowledged). */
export interface AckedLine {
  kind: 'acked';
  i: number;
}

export type FailoverChildLine = ReadyLine | AckedLine;

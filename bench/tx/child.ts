/**
 * One bench:tx child process: opens one store in the directory the parent made, loads the accounts,
 * runs the three phases (each for a fixed time or until its transactions run out) and checks the
 * balances after each. Prints JSON lines on stdout: one per phase, then the result. Errors go to stderr.
 */
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { openTxStore, type StoreName, type TxCounters, type TxStore } from './stores.js';
import { buildWorkload, initialBalance, type PhaseName, phaseNames, type Workload } from './workload.js';

export interface PhaseResult {
  /** Transactions committed, and rejected (lightning-db: conflicts beyond the retries). */
  committed: number;
  failed: number;
  /** Transfers that found too little in the source and moved nothing. */
  unmoved: number;
  seconds: number;
  cpuSeconds: number;
  perSecond: number;
  /** Of `seconds`: waiting at the end for the store to report its commits durable (lmdb-js). */
  settleSeconds: number | null;
  /** lightning-db: this phase's stats().transactions. */
  counters: TxCounters | null;
  firstError: string | null;
}

export interface PhaseLine extends PhaseResult {
  kind: 'phase';
  store: StoreName;
  phase: PhaseName;
}

export interface ResultLine {
  kind: 'result';
  store: StoreName;
  /** Set by the parent (1-based); a child reports 0. */
  round: number;
  accounts: number;
  concurrency: number;
  setup: string;
  durability: string;
  method: string;
  facts: Record<string, string | number | boolean>;
  loadSeconds: number;
  phases: Record<PhaseName, PhaseResult>;
  /** The total balance after the last phase: accounts x 1,000 + the committed read-modify-writes. */
  total: number;
  /** Wrong answers found by the checks: a benchmark with any is not trustworthy. */
  problems: string[];
}

export type ChildLine = PhaseLine | ResultLine;

/** Typed, so every line the parent reads has the shape it expects. */
const emit: (line: ChildLine) => void = emitLine;

export interface ChildOptions {
  store: StoreName;
  dir: string;
  accounts: number;
  transactions: number;
  seconds: number;
  concurrency: number;
  seed: number;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface Tally {
  committed: number;
  failed: number;
  unmoved: number;
  firstError: string | null;
}

/** One transaction of a phase: transfer t, or read-modify-write t. */
function runOne(
  store: TxStore,
  workload: Workload,
  phase: PhaseName,
  t: number,
): Promise<boolean> | boolean | undefined {
  const keys = workload.keys;
  if (phase === 'rmw') {
    const done = store.readModifyWrite(keys[workload.rmw[t]!]!);
    return done === undefined ? undefined : done.then(() => true);
  }
  const ops = phase === 'local' ? workload.local : workload.cross;
  return store.transfer(keys[ops[t * 3]!]!, keys[ops[t * 3 + 1]!]!, ops[t * 3 + 2]!);
}

/** Runs a store whose transactions are promises with `concurrency` outstanding, until `count` or the deadline. */
function runConcurrent(
  store: TxStore,
  workload: Workload,
  phase: PhaseName,
  count: number,
  deadline: number,
  concurrency: number,
): Promise<Tally> {
  const tally: Tally = { committed: 0, failed: 0, unmoved: 0, firstError: null };
  let issued = 0;
  let outstanding = 0;
  return new Promise((resolve) => {
    const issue = (): void => {
      const t = issued++;
      outstanding++;
      Promise.resolve(runOne(store, workload, phase, t)).then(
        (moved) => {
          tally.committed++;
          if (moved === false) tally.unmoved++;
          settle();
        },
        (error: unknown) => {
          tally.failed++;
          tally.firstError ??= describeError(error);
          settle();
        },
      );
    };
    const settle = (): void => {
      outstanding--;
      if (issued < count && performance.now() < deadline) issue();
      else if (outstanding === 0) resolve(tally);
    };
    for (let i = 0; i < Math.min(concurrency, count); i++) issue();
  });
}

/** Runs a synchronous store one transaction after another, until `count` or the deadline. */
function runSequential(
  store: TxStore,
  workload: Workload,
  phase: PhaseName,
  count: number,
  deadline: number,
): Tally {
  const tally: Tally = { committed: 0, failed: 0, unmoved: 0, firstError: null };
  for (let t = 0; t < count; t++) {
    if ((t & 15) === 0 && performance.now() >= deadline) break;
    try {
      if (runOne(store, workload, phase, t) === false) tally.unmoved++;
      tally.committed++;
    } catch (error) {
      tally.failed++;
      tally.firstError ??= describeError(error);
    }
  }
  return tally;
}

function totalBalance(store: TxStore, workload: Workload): number {
  let total = 0;
  for (const key of workload.keys) total += store.balance(key) ?? Number.NaN;
  return total;
}

function difference(after: TxCounters | null, before: TxCounters | null): TxCounters | null {
  if (after === null || before === null) return null;
  return {
    commits: after.commits - before.commits,
    conflicts: after.conflicts - before.conflicts,
    retries: after.retries - before.retries,
    failed: after.failed - before.failed,
    crossPartitionCommits: after.crossPartitionCommits - before.crossPartitionCommits,
  };
}

export async function runChild(options: ChildOptions): Promise<void> {
  const workload = await buildWorkload(options.accounts, options.transactions, options.seed);
  const store = await openTxStore(options.store, options.dir);
  const problems: string[] = [];
  const loadStarted = performance.now();
  await store.load(workload.keys, initialBalance);
  await store.settle();
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  let expectedTotal = options.accounts * initialBalance;
  const phases = {} as Record<PhaseName, PhaseResult>;

  for (const phase of phaseNames) {
    collectGarbage();
    const before = store.counters();
    const startMs = performance.now();
    const startCpu = process.cpuUsage();
    const deadline = startMs + options.seconds * 1000;
    const tally = store.concurrent
      ? await runConcurrent(store, workload, phase, options.transactions, deadline, options.concurrency)
      : runSequential(store, workload, phase, options.transactions, deadline);
    const settleSeconds = await store.settle();
    const seconds = (performance.now() - startMs) / 1000;
    const cpu = process.cpuUsage(startCpu);
    const counters = difference(store.counters(), before);
    const result: PhaseResult = {
      ...tally,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      perSecond: tally.committed / seconds,
      settleSeconds,
      counters,
    };
    phases[phase] = result;
    emit({ kind: 'phase', store: options.store, phase, ...result });

    // The checks: conservation for transfers, exactly one more per read-modify-write.
    if (phase === 'rmw') expectedTotal += tally.committed;
    const total = totalBalance(store, workload);
    if (total !== expectedTotal)
      problems.push(`after ${phase}: total balance ${total}, expected ${expectedTotal}`);
    if (counters !== null) {
      if (counters.commits !== tally.committed) {
        problems.push(
          `after ${phase}: stats().transactions.commits moved by ${counters.commits} for ${tally.committed} commits`,
        );
      }
      const crossExpected = phase === 'cross' ? tally.committed : 0;
      if (counters.crossPartitionCommits !== crossExpected) {
        problems.push(
          `after ${phase}: ${counters.crossPartitionCommits} cross-partition commits, expected ${crossExpected}`,
        );
      }
    }
  }
  await store.close();
  emit({
    kind: 'result',
    store: options.store,
    round: 0,
    accounts: options.accounts,
    concurrency: store.concurrent ? options.concurrency : 1,
    setup: store.setup,
    durability: store.durability,
    method: store.method,
    facts: store.facts,
    loadSeconds,
    phases,
    total: expectedTotal,
    problems,
  });
}

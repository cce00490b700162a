/**
 * One bench:tx child process: opens one store in the directory the parent made, loads the accounts,
 * runs the three phases (each for a fixed time or until its transactions run out) and checks the
 * balances after each. Prints JSON lines on stdout: one per phase, then the result. Errors go to stderr.
 */
import { collectGarbage, emitLine } from '../lib/child-output.js';
import { openTxStore, type StoreName, type TxCounters, type TxDurability, type TxStore } from './stores.js';
import { buildWorkload, initialBalance, type PhaseName, phaseNames, type Workload } from './workload.js';

export interface PhaseResult {
  /** Transactions committed, and rejected (lightning-db: conflicts beyond the retries). */
  committed: number;
  failed: number;
  /** Transfers that found too little in the source and moved nothing. */
  unmoved: number;
  seconds: number;
  /** CPU seconds of the whole process (every thread) over the timed window. */
  cpuSeconds: number;
  perSecond: number;
  /** Committed transactions per CPU-second: what a transaction costs in CPU, whatever the wall time. */
  perCpuSecond: number;
  /** Of `seconds`: waiting at the end for the store to report its commits durable (lmdb-js). */
  settleSeconds: number | null;
  /** lightning-db: this phase's stats().transactions. */
  counters: TxCounters | null;
  firstError: string | null;
}

export interface PhaseLine extends PhaseResult {
  kind: 'phase';
  store: StoreName;
  durabilityClass: TxDurability;
  concurrency: number;
  phase: PhaseName;
}

export interface ResultLine {
  kind: 'result';
  store: StoreName;
  /** Set by the parent (1-based); a child reports 0. */
  round: number;
  accounts: number;
  durabilityClass: TxDurability;
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
  durability: TxDurability;
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
  if (phase === 'rmw') {
    const done = store.readModifyWrite(workload.rmw[t]!);
    return done === undefined ? undefined : done.then(() => true);
  }
  const ops = phase === 'local' ? workload.local : workload.cross;
  return store.transfer(ops[t * 3]!, ops[t * 3 + 1]!, ops[t * 3 + 2]!);
}

/**
 * The one driver for every store: keeps `concurrency` transactions outstanding (1: each is awaited
 * before the next is issued) until `count` or the deadline. A synchronous store's transaction has
 * committed when its call returns; it is awaited all the same, so every store pays the same hand-off.
 */
function runTransactions(
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
    const committed = (moved: boolean | undefined): void => {
      tally.committed++;
      if (moved === false) tally.unmoved++;
      settle();
    };
    const failed = (error: unknown): void => {
      tally.failed++;
      tally.firstError ??= describeError(error);
      settle();
    };
    const issue = (): void => {
      const t = issued++;
      outstanding++;
      let done: Promise<boolean> | boolean | undefined;
      try {
        done = runOne(store, workload, phase, t);
      } catch (error) {
        done = Promise.reject(error);
      }
      Promise.resolve(done).then(committed, failed);
    };
    const settle = (): void => {
      outstanding--;
      if (issued < count && performance.now() < deadline) issue();
      else if (outstanding === 0) resolve(tally);
    };
    for (let i = 0; i < Math.min(concurrency, count); i++) issue();
  });
}

function totalBalance(store: TxStore, workload: Workload): number {
  let total = 0;
  for (let account = 0; account < workload.accounts; account++) total += store.balance(account) ?? Number.NaN;
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
  const store = await openTxStore(options.store, options.dir, options.durability, workload.keys);
  const problems: string[] = [];
  const loadStarted = performance.now();
  await store.load(initialBalance);
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  let expectedTotal = options.accounts * initialBalance;
  const phases = {} as Record<PhaseName, PhaseResult>;

  for (const phase of phaseNames) {
    collectGarbage();
    const before = store.counters();
    const startMs = performance.now();
    const startCpu = process.cpuUsage();
    const deadline = startMs + options.seconds * 1000;
    const tally = await runTransactions(
      store,
      workload,
      phase,
      options.transactions,
      deadline,
      options.concurrency,
    );
    const settleSeconds = await store.settle();
    const seconds = (performance.now() - startMs) / 1000;
    const cpu = process.cpuUsage(startCpu);
    const counters = difference(store.counters(), before);
    const result: PhaseResult = {
      ...tally,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      perSecond: tally.committed / seconds,
      perCpuSecond: tally.committed / ((cpu.user + cpu.system) / 1e6),
      settleSeconds,
      counters,
    };
    phases[phase] = result;
    emit({
      kind: 'phase',
      store: options.store,
      durabilityClass: options.durability,
      concurrency: options.concurrency,
      phase,
      ...result,
    });

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
    durabilityClass: options.durability,
    concurrency: options.concurrency,
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

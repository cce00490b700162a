/**
 * The kill loop: run the crash child on a directory, SIGKILL it, reopen and verify, and again on the
 * same directory, so that every recovery after the first starts from a directory that an earlier
 * recovery (and an earlier crash) left: logs cut at torn tails, segments the previous opens started.
 * Every `roundsPerDir` rounds a fresh directory starts, which keeps the logs (and their replay time)
 * bounded.
 *
 * A failure throws with the seed, the round, what the child was doing, and the directory as the
 * crash left it, kept in /tmp/crash-evidence-<seed>.
 */
import { mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../support/seeded-random.js';
import { type ChildOptions, describePlan, type KillPlan, runChildUntilKilled } from './child-runner.js';
import { CrashModel } from './crash-model.js';
import { keepEvidenceAndThrow, snapshotBeforeRecovery } from './evidence.js';
import { type VerifyResult, verifyAfterCrash } from './verify.js';
import { newestSegments, recordsOf } from './wal-inspect.js';
import { peekValueHeader, valueMagicBytes } from './workload.js';

/** How a failed round of the kill loop heads its error. */
const crashFailure = { title: 'CRASH TEST FAILURE', leftBy: 'the crash' };

export interface KillLoopOptions {
  readonly seed: number;
  readonly rounds: number;
  readonly roundsPerDir: number;
  readonly profile: ChildOptions['profile'];
  /** Chooses the kill point of a round from the loop's random source. */
  readonly plan: (random: () => number, runInDir: number) => KillPlan;
  /** Chooses the child's durability mode. */
  readonly mode: (random: () => number) => ChildOptions['mode'];
  readonly log: (line: string) => void;
}

export interface KillLoopTotals {
  rounds: number;
  directories: number;
  killsDuringOpen: number;
  issued: number;
  acked: number;
  ackedVerified: number;
  rejected: number;
  inFlight: number;
  inFlightApplied: number;
  inFlightLost: number;
  keysChecked: number;
  keysAtLaterWrite: number;
  batchesChecked: number;
  batchesApplied: number;
  parentWrites: number;
  tornTails: number;
  tornBytes: number;
  /** Torn tails made by hand (a subset of tornTails). */
  tearsMade: number;
  openMsMax: number;
  elapsedMs: number;
}

export async function runKillLoop(options: KillLoopOptions): Promise<KillLoopTotals> {
  const random = mulberry32(options.seed);
  const totals: KillLoopTotals = {
    rounds: 0,
    directories: 0,
    killsDuringOpen: 0,
    issued: 0,
    acked: 0,
    ackedVerified: 0,
    rejected: 0,
    inFlight: 0,
    inFlightApplied: 0,
    inFlightLost: 0,
    keysChecked: 0,
    keysAtLaterWrite: 0,
    batchesChecked: 0,
    batchesApplied: 0,
    parentWrites: 0,
    tornTails: 0,
    tornBytes: 0,
    tearsMade: 0,
    openMsMax: 0,
    elapsedMs: 0,
  };
  const started = performance.now();
  let dir = '';
  let model = new CrashModel();
  const cleanup: string[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      const runInDir = round % options.roundsPerDir;
      if (runInDir === 0) {
        dir = await mkdtemp(join(tmpdir(), 'lightning-crash-'));
        cleanup.push(dir);
        model = new CrashModel();
        totals.directories++;
      }
      const snapshot = `${dir}.before-recovery`;
      cleanup.push(snapshot);
      const child: ChildOptions = {
        dir,
        seed: random(),
        mode: options.mode(random),
        // Owner workers change between opens (partitions move between them); each one costs startup time.
        workers: [1, 1, 1, 1, 2, 2, 2, 2, 2, 3][random() % 10]!,
        gen: 2 * runInDir + 1,
        profile: options.profile,
      };
      const plan = options.plan(random, runInDir);
      const verifyWorkers = random() % 4 === 0 ? 2 : 1;
      let what =
        `seed ${options.seed}, round ${round + 1}/${options.rounds} (run ${runInDir + 1} on ${dir}): ` +
        `child seed ${child.seed}, ${child.mode}, ${child.workers} worker(s), ${describePlan(plan)}`;

      model.beginRun(child.gen);
      let lines: string[] = [];
      let childMs = '';
      try {
        const outcome = await runChildUntilKilled(child, plan);
        childMs = `child ready ${outcome.readyMs?.toFixed(0) ?? '-'} ms, killed at ${outcome.killedAtMs.toFixed(0)} ms`;
        lines = outcome.lines;
        for (const line of lines) model.applyLine(line);
        if (!outcome.ready) totals.killsDuringOpen++;
      } catch (error) {
        await snapshotBeforeRecovery(dir, snapshot);
        const message = error instanceof Error ? error.message : String(error);
        return await keepEvidenceAndThrow(crashFailure, snapshot, options.seed, what, message, lines);
      }

      // A SIGKILL rarely tears a write (the kernel finishes most write calls), so a third of the
      // runs that wrote also get a torn tail by hand: the newest record of a partition, if it belongs
      // to an operation still in flight, is cut short, as a kill inside its write call would have.
      let tear: string | null = null;
      if (model.ready && random() % 3 === 0) tear = await tearUnacknowledgedTail(dir, model, random);
      if (tear !== null) {
        totals.tearsMade++;
        what += `; torn by hand: ${tear}`;
      }

      // Keep the directory as the crash left it until the check passed: recovery cuts torn tails.
      await snapshotBeforeRecovery(dir, snapshot);
      let result: VerifyResult;
      const verifyStarted = performance.now();
      try {
        result = await verifyAfterCrash(dir, model, {
          workers: verifyWorkers,
          writeGen: child.gen + 1,
          random,
        });
      } catch (error) {
        const detail = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
        return await keepEvidenceAndThrow(
          crashFailure,
          snapshot,
          options.seed,
          what,
          `reopening and verifying failed: ${detail}`,
          lines,
        );
      }
      if (result.problems.length > 0) {
        const listed = result.problems.slice(0, 30).join('\n  ');
        const more = result.problems.length > 30 ? `\n  ... ${result.problems.length - 30} more` : '';
        await keepEvidenceAndThrow(
          crashFailure,
          snapshot,
          options.seed,
          what,
          `${result.problems.length} problem(s):\n  ${listed}${more}`,
          lines,
        );
      }
      await rm(snapshot, { recursive: true, force: true });

      const s = result.stats;
      totals.rounds++;
      totals.issued += s.issued;
      totals.acked += s.acked;
      totals.ackedVerified += s.ackedVerified;
      totals.rejected += s.rejected;
      totals.inFlight += s.inFlight;
      totals.inFlightApplied += s.inFlightApplied;
      totals.inFlightLost += s.inFlightLost;
      totals.keysChecked += s.keys;
      totals.keysAtLaterWrite += s.keysAtLaterWrite;
      totals.batchesChecked += s.batchesChecked;
      totals.batchesApplied += s.batchesApplied;
      totals.parentWrites += result.parentWrites;
      totals.tornTails += result.tornTails;
      totals.tornBytes += result.tornBytes;
      totals.openMsMax = Math.max(totals.openMsMax, result.openMs);
      options.log(
        `round ${round + 1}/${options.rounds} ${child.mode} w${child.workers} ${describePlan(plan)}: ` +
          `${s.issued} issued, ${s.acked} acked (all verified: ${s.ackedVerified}), ${s.inFlight} in flight ` +
          `(${s.inFlightApplied} survived, ${s.inFlightLost} lost), ${s.batchesChecked} batches checked, ` +
          `${result.tornTails} torn tail(s) cut (${result.tornBytes} B${tear === null ? '' : ', one made by hand'}); ` +
          `${childMs}, reopen ${result.openMs.toFixed(0)} ms, verify ${(performance.now() - verifyStarted).toFixed(0)} ms`,
      );
    }
  } finally {
    totals.elapsedMs = performance.now() - started;
    for (const path of cleanup) await rm(path, { recursive: true, force: true });
  }
  return totals;
}

/**
 * Cuts the newest record of one owner log short, if that record belongs to an operation that was
 * issued but not acknowledged (found by the value header inside the record: the value carries its
 * generation and sequence number). Returns what was done, or null if no log qualified.
 * A cut there is exactly what a kill inside the write call leaves, and the model allows the operation
 * to be lost; everything before it in the log must survive.
 */
async function tearUnacknowledgedTail(
  dir: string,
  model: CrashModel,
  random: () => number,
): Promise<string | null> {
  const logs = await newestSegments(dir);
  const start = random() % Math.max(1, logs.length);
  for (let i = 0; i < logs.length; i++) {
    const newest = logs[(start + i) % logs.length]!;
    const record = (await recordsOf(newest.path)).at(-1);
    if (record === undefined) continue;
    const bytes = await readFile(newest.path);
    const payload = bytes.subarray(record.offset, record.end);
    const at = payload.indexOf(valueMagicBytes);
    const header = at < 0 ? null : peekValueHeader(payload, at);
    if (header === null || header.gen !== model.gen) continue;
    const op = model.ops.find((candidate) => candidate.seq === header.seq);
    if (op === undefined || op.status !== 'issued' || !op.entries.some((entry) => entry.key === header.key))
      continue;
    const size = record.end - record.offset;
    const cut = record.offset + 1 + (random() % (size - 1));
    await truncate(newest.path, cut);
    return `partition ${record.partition}: ${newest.name} cut at byte ${cut}, inside the record (bytes ${record.offset}..${record.end}) of in-flight operation ${op.seq}`;
  }
  return null;
}

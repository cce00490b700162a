/**
 * Power loss, simulated: a child process writes (puts, deletes, batches and transactions across
 * partitions, checkpoints) through the fault file layer, which journals every write and sync of
 * every thread, and is SIGKILLed. Its journal is then cut at random records and the directory rebuilt
 * as a power loss there could leave it: the synced bytes, plus a random part of the rest (kept whole,
 * torn, or lost; directory entries kept or undone). Each image is recovered with open() and checked:
 * every write acknowledged in 'sync' present; no batch or transaction torn across partitions in any
 * mode; each partition a prefix of its order; every value exact; checkTree clean on every recovered
 * tree and version store. Worker counts change between the child's opens and the checks'.
 *
 *   LIGHTNING_SEED=<n>                replay a seed's choices (printed at the start and with every
 *                                     problem): workloads, kill times, crash points and losses; thread
 *                                     timing still varies, so each kind of problem also keeps its first
 *                                     image (as the power loss left it) and journal in
 *                                     /tmp/power-loss-evidence-<seed>-<mode>, and every problem is
 *                                     listed in /tmp/power-loss-report-<seed>-<mode>.txt
 *   LIGHTNING_POWER_LOSS_ROUNDS=<n>   simulated power losses per durability mode (default 80;
 *                                     `npm run test:power-loss` runs thousands)
 *   LIGHTNING_POWER_LOSS_ORDERS=<list> how unsynced data may survive (default prefix):
 *                                     'prefix', each file's and directory's changes in the order made,
 *                                     up to a random point (in-order write-back, as RocksDB's
 *                                     FaultInjectionTestFS keeps); 'subset', each 4 KiB page and each
 *                                     directory change on its own (write-back in any order).
 *
 * 'subset' is not in the default because it finds a known open defect: when an earlier page of a
 * log's unsynced tail is lost and a later one survives, recovery cannot tell that hole from damage in
 * synced records and fails with ERR_CORRUPTION (no acknowledged write is lost; `lightning-cli repair`
 * opens it). Telling them apart needs the log's durable extent recorded where recovery can read it,
 * the "every file accounted for" work; run LIGHTNING_POWER_LOSS_ORDERS=prefix,subset to see it.
 */
import { randomInt } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { positiveFromEnv } from './crash/kill-lanes.js';
import { runPowerLoss } from './power-loss/power-loss-loop.js';
import { seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(randomInt(2 ** 32));
const crashes = positiveFromEnv('LIGHTNING_POWER_LOSS_ROUNDS', 80);
const crashesPerRun = 40;
const orders = (process.env.LIGHTNING_POWER_LOSS_ORDERS ?? 'prefix').split(',') as ('prefix' | 'subset')[];
for (const order of orders) {
  if (order !== 'prefix' && order !== 'subset')
    throw new Error(`LIGHTNING_POWER_LOSS_ORDERS: unknown order ${order}`);
}
const problemsShownMax = 40;
const tornShownMax = 20;

/** A problem's kind and the loss order of its image, for the summary. */
function problemKind(problem: string): string {
  const order = /, (prefix|subset) keep/.exec(problem)?.[1] ?? '';
  if (!problem.includes(' tear '))
    return `the child failed (${/ERR_\w+/.exec(problem)?.[0] ?? 'no error code'})`;
  const detail = problem.slice(problem.indexOf(': ', problem.indexOf(' tear ')) + 2);
  const kind = /^recovery \((.*?)\) failed: (\w+)/.exec(detail);
  const name =
    kind !== null ? `recovery failed (${kind[2]}, ${kind[1].split(' ')[0]})` : detail.split(/[: ]/)[0]!;
  return `${name} [${order}]`;
}

console.log(
  `power-loss: seed ${seed} (LIGHTNING_SEED=${seed} replays its choices), ${crashes} simulated power losses ` +
    `per mode, loss orders ${orders.join(',')}`,
);

describe('simulated power loss', () => {
  for (const mode of ['sync', 'relaxed', 'none'] as const) {
    it(`${mode}: recovers a consistent database after ${crashes} power losses (seed ${seed})`, {
      timeout: 120_000 + crashes * 3_000,
    }, async () => {
      const report = await runPowerLoss({
        seed,
        mode,
        crashes,
        crashesPerRun,
        runsPerDir: 3,
        orders,
        log: (line) => console.log(`power-loss: ${line}`),
      });
      const t = report.totals;
      console.log(
        `power-loss: seed ${seed}, ${mode}: ${t.crashes} power losses from ${t.runs} runs; ` +
          `${t.ops} operations before the crash points, ${t.acked} acknowledged, ${t.survived} survived, ` +
          `${t.lost} lost (${t.ackedLost} of them acknowledged), ${t.undecided} undecidable; ` +
          `${t.checkpoints} checkpoints issued; ${t.treesChecked} trees checked; ` +
          `${report.torn.length} torn cross-partition operations; ${report.problems.length} problem(s)`,
      );
      const kinds = new Map<string, number>();
      for (const problem of report.problems) {
        const kind = problemKind(problem);
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      if (kinds.size > 0) {
        const listed = [...kinds].map(([kind, count]) => `${count} × ${kind}`).join('; ');
        console.log(`power-loss: seed ${seed}, ${mode}: problems by kind: ${listed}`);
        const file = join(tmpdir(), `power-loss-report-${seed}-${mode}.txt`);
        await writeFile(file, `${report.problems.join('\n')}\n`);
        console.log(`power-loss: every problem, one a line: ${file}`);
        console.log(`power-loss: the first failing image of each kind, with its journal: ${report.evidence}`);
      }
      for (const line of report.torn.slice(0, tornShownMax)) console.log(`power-loss: TORN ${line}`);
      const shown = report.problems.slice(0, problemsShownMax).join('\n  ');
      const more =
        report.problems.length > problemsShownMax
          ? `\n  ... ${report.problems.length - problemsShownMax} more`
          : '';
      expect(report.problems, `${report.problems.length} problem(s):\n  ${shown}${more}`).toEqual([]);
      expect(t.crashes).toBe(crashes);
      // The workload really ran: the checks judged operations, not empty directories.
      expect(t.survived).toBeGreaterThan(0);
      if (mode === 'sync') expect(t.acked).toBeGreaterThan(0);
    });
  }
});

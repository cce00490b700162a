/**
 * The power-loss loop: run the child (power-loss-child.ts) on a directory through the fault file
 * layer, SIGKILL it, then replay its journal and stop the replay at several records chosen at random
 * (always including the last): at each, rebuild the directory as a power loss there could leave it
 * (power-loss-image.ts), recover it with the engine's own open(), and check it (check.ts, and
 * checkTree on every recovered tree and version store). The image at the last record becomes the
 * directory of the next run, so later runs recover what earlier power losses and recoveries left;
 * every `runsPerDir` runs a fresh directory starts.
 *
 * Problems do not stop the loop: every crash point is checked and every problem reported with the
 * seed, run, crash point and loss policy that replay it.
 */

import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../src/index.js';
import { createPartitionRouter } from '../../src/main/partition-router.js';
import { BTree, checkTree, TreeReader } from '../../src/shared-memory/index.js';
import { accountForFiles } from '../../src/storage/database-files.js';
import { readMetadata } from '../../src/storage/database-metadata.js';
import { readCommittedTransactions } from '../../src/storage/decision-log.js';
import { LogCoverage } from '../../src/storage/wal/index.js';
import { recoverPartitions } from '../../src/workers/partition-recovery.js';
import { runUntilKilled } from '../crash/kill-harness.js';
import { journalEnvName, readJournal } from '../support/fault-journal.js';
import { type LossPolicy, PowerLossReplay, writeImage } from '../support/power-loss-image.js';
import { mulberry32 } from '../support/seeded-random.js';
import { checkRecovered, opsFromNotes, type TornOp } from './check.js';
import { type ParsedNote, parseNote, powerLossPartitions } from './workload.js';

const childPath = fileURLToPath(new URL('./power-loss-child.ts', import.meta.url));
type Mode = 'sync' | 'relaxed' | 'none';
/** Room for one recovered partition in this thread (a growable buffer: only what is used is touched). */
const recoveredTreeBytesMax = 256 * 1024 * 1024;

export interface PowerLossOptions {
  readonly seed: number;
  readonly mode: Mode;
  /** Simulated power losses to check. */
  readonly crashes: number;
  /** Crash points taken from one run's journal. */
  readonly crashesPerRun: number;
  readonly runsPerDir: number;
  /** The loss orders to draw images from (see LossPolicy): both by default. */
  readonly orders: readonly LossPolicy['order'][];
  readonly log: (line: string) => void;
}

export interface PowerLossTotals {
  runs: number;
  crashes: number;
  /** Operations issued before the crash points, summed over crash points. */
  ops: number;
  acked: number;
  survived: number;
  lost: number;
  ackedLost: number;
  undecided: number;
  checkpoints: number;
  treesChecked: number;
}

export interface PowerLossReport {
  readonly totals: PowerLossTotals;
  /** Each problem with where it was found. */
  readonly problems: string[];
  /** Torn cross-partition operations, with where they were found. */
  readonly torn: string[];
  /** Where the first failing image of each kind of problem and its journal were kept, if one failed. */
  readonly evidence: string | null;
}

const policies: readonly LossPolicy[] = [
  { order: 'prefix', keep: 0, tear: 0 },
  { order: 'prefix', keep: 0.5, tear: 0.5 },
  { order: 'prefix', keep: 0.9, tear: 0.5 },
  { order: 'subset', keep: 0.5, tear: 0.3 },
  { order: 'subset', keep: 0.9, tear: 0.3 },
  { order: 'prefix', keep: 1, tear: 0 },
];

export async function runPowerLoss(options: PowerLossOptions): Promise<PowerLossReport> {
  const random = mulberry32(options.seed);
  const usable = policies.filter((policy) => options.orders.includes(policy.order));
  if (usable.length === 0) throw new Error(`no loss policy in the orders ${options.orders.join(', ')}`);
  const router = await createPartitionRouter(powerLossPartitions);
  const partitionOf = (key: string) => router.partitionOf(Buffer.from(key));
  const base = await mkdtemp(join(tmpdir(), 'lightning-power-loss-'));
  const totals: PowerLossTotals = {
    runs: 0,
    crashes: 0,
    ops: 0,
    acked: 0,
    survived: 0,
    lost: 0,
    ackedLost: 0,
    undecided: 0,
    checkpoints: 0,
    treesChecked: 0,
  };
  const problems: string[] = [];
  const torn: string[] = [];
  const evidenceKinds = new Set<string>();
  let evidenceDir: string | null = null;
  let dir = '';
  let baseline = new Set<string>();
  try {
    for (let run = 0; totals.crashes < options.crashes; run++) {
      const runInDir = run % options.runsPerDir;
      if (runInDir === 0) {
        dir = join(base, `dir-${run}`);
        baseline = new Set();
      }
      const replay = await PowerLossReplay.fromDirectory(await ensureDir(dir));
      const journal = join(base, `journal-${run}`);
      const childSeed = random();
      const workers = 1 + (random() % 3);
      const killDelayMs = 150 + (random() % 900);
      const where = `seed ${options.seed}, ${options.mode}, run ${run} (child seed ${childSeed}, ${workers} worker(s), killed ${killDelayMs} ms after ready)`;
      const childStarted = performance.now();
      await runUntilKilled({
        script: childPath,
        args: [dir, String(childSeed), options.mode, String(workers), String(runInDir + 1)],
        env: { ...process.env, [journalEnvName]: journal },
        reachKillPointMs: 120_000,
        planText: `${killDelayMs} ms after ready`,
        onLine: (line, control) => {
          if (line === 'R') control.killAfter(killDelayMs);
        },
        judgeExit: (code, signal, killedAtMs) =>
          killedAtMs === null || signal !== 'SIGKILL'
            ? `the child exited on its own (code ${code}, signal ${signal})`
            : null,
      }).catch((error: unknown) => {
        // The engine failed in the child (a write or checkpoint rejected, a failed open): that is a
        // problem found, and what it journaled until then can still lose power.
        const message = error instanceof Error ? error.message : String(error);
        problems.push(`${where}: ${message.split('\n')[0]}`);
      });
      totals.runs++;
      const childMs = performance.now() - childStarted;
      const checksStarted = performance.now();
      const records = existsSync(journal) ? readJournal(journal) : [];
      const points = new Set<number>([records.length]);
      const wanted = Math.min(options.crashesPerRun, options.crashes - totals.crashes);
      while (points.size < Math.min(wanted, records.length)) points.add(1 + (random() % records.length));
      const notes: ParsedNote[] = [];
      let next = 0;
      for (const point of [...points].sort((a, b) => a - b)) {
        for (; next < point; next++) {
          const record = records[next]!;
          replay.apply(record);
          if (record.header.op === 'note') notes.push(parseNote(record.header.text));
        }
        const policy = usable[random() % usable.length]!;
        const last = point === records.length;
        const at = `${where}, crash at journal record ${point} of ${records.length}, ${policy.order} keep ${policy.keep} tear ${policy.tear}`;
        const image = replay.image(random, policy);
        const target = last ? join(base, `dir-${run + 1}`) : join(base, `image-${run}-${point}`);
        await writeImage(image, target);
        // The image the next run starts from goes through open() with another worker count; the
        // others through the owners' recovery itself, in this thread, which costs no worker start-up.
        const verifyWorkers = 1 + (random() % 3);
        const how = last ? `open() with ${verifyWorkers} worker(s)` : 'recoverPartitions';
        const recovery = last ? recoverAndRead(target, verifyWorkers) : recoverInProcess(target);
        const found = await recovery.catch((error: unknown) => ({
          error: error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error),
        }));
        totals.crashes++;
        totals.checkpoints += notes.filter((n) => n.tag === 'C').length;
        const here: string[] = [];
        if ('error' in found) here.push(`recovery (${how}) failed: ${found.error}`);
        else {
          totals.treesChecked += found.treesChecked;
          here.push(...found.problems);
          const ops = opsFromNotes(notes, partitionOf);
          const result = checkRecovered(ops, baseline, found.observed, options.mode);
          here.push(...result.problems);
          for (const name of Object.keys(result.stats) as (keyof typeof result.stats)[])
            if (name !== 'keys') totals[name] += result.stats[name];
          for (const t of result.torn) torn.push(describeTorn(t, at));
          if (last) baseline = new Set(found.observed.keys());
        }
        if (here.length > 0) {
          problems.push(...here.map((p) => `${at}: ${p}`));
          // The first image of each kind of problem is kept as the power loss left it (before
          // recovery cut anything), with its journal: the crash point is its first `record` records.
          const evidence = join(tmpdir(), `power-loss-evidence-${options.seed}-${options.mode}`);
          for (const kind of new Set(here.map((p) => p.split(/[: ]/)[0]!))) {
            if (evidenceKinds.has(kind)) continue;
            if (evidenceKinds.size === 0) await rm(evidence, { recursive: true, force: true });
            evidenceKinds.add(kind);
            const kept = join(evidence, `${kind}-run${run}-record${point}`);
            await writeImage(image, join(kept, 'image'));
            if (existsSync(journal)) await cp(journal, join(kept, 'journal'));
            await writeFile(join(kept, 'problems.txt'), `${here.map((p) => `${at}: ${p}`).join('\n')}\n`);
            evidenceDir = evidence;
          }
        }
        if (!last) await rm(target, { recursive: true, force: true });
      }
      options.log(
        `${options.mode} run ${run}: ${records.length} journal records, ${points.size} crash points, ` +
          `${notes.filter((n) => n.tag === 'I').length} operations issued by the kill, ${problems.length} problem(s) so far ` +
          `(child ${childMs.toFixed(0)} ms, images and checks ${(performance.now() - checksStarted).toFixed(0)} ms)`,
      );
      await rm(journal, { force: true });
      await rm(dir, { recursive: true, force: true });
      dir = join(base, `dir-${run + 1}`);
      if ((run + 1) % options.runsPerDir === 0) await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
  return { totals, problems, torn, evidence: evidenceDir };
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

function describeTorn(t: TornOp, at: string): string {
  return (
    `${at}: ${t.kind} ${t.seq} (${t.acked ? 'acknowledged' : 'in flight'}) committed in partition(s) ` +
    `${t.survivedIn.join(',')} and lost in ${t.lostIn.join(',')}`
  );
}

/**
 * Recovers every partition of a rebuilt directory with the owners' own recovery (the decision logs,
 * then each partition's checkpoint and log) into trees of this thread, checks each tree, and reads
 * every key.
 */
async function recoverInProcess(
  dir: string,
): Promise<{ observed: Map<string, Buffer>; problems: string[]; treesChecked: number }> {
  const metadata = await readMetadata(dir);
  if (metadata !== null && metadata.partitions !== powerLossPartitions) {
    throw new Error(
      `metadata says ${metadata.partitions} partitions, the database was made with ${powerLossPartitions}`,
    );
  }
  const observed = new Map<string, Buffer>();
  const problems: string[] = [];
  // As open() sees it: a power loss before the identity was written leaves a creation to redo, which
  // must hold no data (nothing was acknowledged before open() resolved); anything else is refused.
  const files = await accountForFiles(dir, undefined);
  if (files.kind === 'none') return { observed, problems, treesChecked: 0 };
  const committed = await readCommittedTransactions(dir);
  const owned = Array.from({ length: powerLossPartitions }, (_, partition) => ({
    partition,
    tree: BTree.create({ maxBytes: recoveredTreeBytesMax }),
  }));
  // Every log on disk is an earlier run's: read them all, as one owner of every partition would.
  await recoverPartitions(dir, owned, committed, Number.MAX_SAFE_INTEGER, LogCoverage.none());
  for (const { partition, tree } of owned) {
    try {
      checkTree(tree);
    } catch (error) {
      problems.push(`checkTree of partition ${partition}'s recovered tree: ${String(error)}`);
    }
    for (const [key, value] of tree.range())
      observed.set(Buffer.from(key).toString('utf8'), Buffer.from(value));
  }
  return { observed, problems, treesChecked: powerLossPartitions };
}

/**
 * Opens a rebuilt directory (recovery), reads every key, closes, and runs checkTree on each
 * partition's tree and version store as recovery left them.
 */
async function recoverAndRead(
  dir: string,
  workers: number,
): Promise<{ observed: Map<string, Buffer>; problems: string[]; treesChecked: number }> {
  const db = await open(dir, { partitions: powerLossPartitions, workers, durability: 'sync' });
  const observed = new Map<string, Buffer>();
  const problems: string[] = [];
  let treesChecked = 0;
  try {
    for (const [key, value] of db.range()) observed.set(key.toString('utf8'), Buffer.from(value));
    const handle = db.share();
    for (const [kind, trees] of [
      ['tree', handle.trees],
      ['version store', handle.versionTrees],
    ] as const) {
      trees.forEach((tree, partition) => {
        try {
          if (tree.kind !== 'lightning-db/tree') throw new Error('power-loss runs keep partitions in arenas');
          checkTree(TreeReader.attach(tree));
          treesChecked++;
        } catch (error) {
          problems.push(`checkTree of partition ${partition}'s ${kind}: ${String(error)}`);
        }
      });
    }
  } finally {
    await db.close();
  }
  return { observed, problems, treesChecked };
}

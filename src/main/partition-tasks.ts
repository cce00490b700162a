import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Piscina } from 'piscina';
import { tsxRegisterUrl } from './owner-worker-start.js';
import { reviveLightningError } from './revive-error.js';

/**
 * The least work worth a pool. A pool thread costs an isolate, the task's modules (about 60) and
 * compiling the hot code again: about 0.3 CPU-seconds, against about 1 CPU-second for all of a
 * 1,000,000-entry backup on the calling thread, which already overlaps its reading with lz4 and the
 * writes on libuv's threads. On 2 cores a pooled backup of 250,000 entries was slower than one on the
 * calling thread, of 500,000 as fast, of 750,000 and 1,000,000 13–15% faster (bench/RESULTS.md,
 * "Open time, and backup, verify and restore in a pool"). Tests lower them to exercise the pool.
 */
export const pooledWorkMin = { backupEntries: 524_288, checkBytes: 64 * 1024 * 1024 };

/** Tasks run so far in this process, in a pool and on the calling thread: what tests look at. */
export const partitionTaskCounts = { pooled: 0, inline: 0 };

/**
 * Whether the calling thread takes tasks too while a pool runs (it does: it is already warm, and it
 * would otherwise only wait). Tests clear it so a small job's tasks reach the pool's threads, which
 * the calling thread would otherwise finish before the threads have loaded.
 */
export const partitionTaskOptions = { callerRuns: true };

/**
 * Tasks each thread keeps in flight. A task's thread reads and encodes while lz4, the writes and the
 * fsyncs run on libuv's threads; with two tasks on a thread one does the former while the other
 * waits for the latter, instead of the thread idling at every block.
 */
const tasksPerThread = 2;

/**
 * A task module as this thread loads it: the default export runs one task. (Each also exports
 * `ready`, which a pool thread answers once it has loaded the module.)
 */
export interface PartitionTaskModule<Task, Result> {
  default: (task: Task) => Promise<Result>;
}

/**
 * Runs one task per partition: on the calling thread, and with `pooled` also in a piscina pool made
 * for this call (as many threads as cores, less the calling thread) and destroyed when the last task
 * settled. Backup, verify and restore spend their time per partition (reading a tree, compressing,
 * hashing, fsyncing); the pool spreads that over the cores. The threads take tasks from the same
 * queue as the calling thread, and only once they have loaded, so a thread that starts late (or a
 * job the calling thread finishes first) costs its start-up and no waiting.
 *
 * Every task settles before this returns or throws, so a failure never leaves a task still writing
 * into a directory the caller is about to remove; after a failure no further task starts, and the
 * first failure (in partition order) is thrown, a worker's LightningError with its code given back.
 * `taskModule` is the file name of a module in src/workers and `load` imports it on this thread.
 * `onDone` runs on this thread as each task finishes; if it throws, that is the task's failure.
 */
export async function runPartitionTasks<Task, Result>(
  taskModule: string,
  load: () => Promise<PartitionTaskModule<Task, Result>>,
  tasks: readonly Task[],
  onDone: (result: Result, index: number) => void,
  pooled: boolean,
): Promise<Result[]> {
  const results: Result[] = new Array<Result>(tasks.length);
  const failures: { index: number; error: unknown }[] = [];
  let next = 0;
  const take = (): number => (failures.length === 0 && next < tasks.length ? next++ : -1);
  /** One task at a time, taken from the shared queue until it is empty or a task failed. */
  const lane = async (run: (task: Task) => Promise<Result>, counted: 'pooled' | 'inline'): Promise<void> => {
    for (let index = take(); index >= 0; index = take()) {
      try {
        const result = await run(tasks[index]!);
        partitionTaskCounts[counted]++;
        results[index] = result;
        onDone(result, index);
      } catch (error) {
        failures.push({ index, error });
      }
    }
  };
  const callerRuns = partitionTaskOptions.callerRuns || !pooled;
  const threads = pooled ? Math.min(tasks.length, availableParallelism()) - (callerRuns ? 1 : 0) : 0;
  const callerLanes: Promise<void>[] = [];
  const poolLanes: Promise<void>[] = [];
  let pool: Piscina | null = null;
  let finished = false;
  try {
    // The pool first, so that its threads load while this thread already works.
    if (threads > 0) {
      const { Piscina } = await import('piscina');
      pool = new Piscina({
        filename: taskFile(taskModule),
        minThreads: threads,
        maxThreads: threads,
        concurrentTasksPerWorker: tasksPerThread,
      });
    }
    if (callerRuns && tasks.length > 0) {
      const run = (await load()).default;
      for (let slot = 0; slot < tasksPerThread; slot++) callerLanes.push(lane(run, 'inline'));
    }
    // Once the calling thread's lanes are done every task has been taken: a thread still loading then
    // has nothing to wait for.
    const callerDone = callerRuns
      ? Promise.all(callerLanes).then(() => true)
      : new Promise<boolean>(() => {});
    if (pool !== null) {
      const started = pool;
      const run = (task: Task) => started.run(task) as Promise<Result>;
      for (let thread = 0; thread < threads; thread++) {
        // A thread answers `ready` once it has loaded the task module: its lanes start taking tasks then.
        const ready = started.run(null, { name: 'ready' }).then(
          () => true,
          (error: unknown) => {
            // Destroying the pool fails a thread still loading; that is no failure of the job.
            if (!finished) failures.push({ index: -1, error });
            return false;
          },
        );
        for (let slot = 0; slot < tasksPerThread; slot++) {
          poolLanes.push(
            Promise.race([ready, callerDone]).then((go) => (go ? lane(run, 'pooled') : undefined)),
          );
        }
      }
    }
    await Promise.all([...callerLanes, ...poolLanes]);
  } finally {
    finished = true;
    await pool?.destroy();
  }
  if (failures.length > 0) {
    const first = failures.reduce((a, b) => (b.index < a.index ? b : a));
    throw reviveLightningError(first.error) ?? first.error;
  }
  return results;
}

/**
 * The file piscina loads in its workers. From the compiled package that is the task module itself.
 * When the engine runs from its TypeScript sources (its own tests), piscina's workers cannot load
 * TypeScript: a small module, written once per process into the temporary directory, registers tsx's
 * loader in the worker and re-exports the task.
 */
function taskFile(taskModule: string): string {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return fileURLToPath(new URL(`../workers/${taskModule}.js`, here));
  const entry = new URL(`../workers/${taskModule}.ts`, here).href;
  const source =
    `const tsx = await import(${JSON.stringify(tsxRegisterUrl())});\n` +
    `tsx.register();\n` +
    `const task = await import(${JSON.stringify(entry)});\n` +
    'export default task.default;\n' +
    'export const ready = task.ready;\n';
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = join(tmpdir(), `lightning-db-task-${digest}.mjs`);
  writeFileSync(file, source);
  return file;
}

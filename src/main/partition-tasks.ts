import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsxRegisterUrl } from './owner-worker-start.js';
import { reviveLightningError } from './revive-error.js';

/**
 * The least work worth a pool. Starting a pool costs each thread an isolate and the engine's modules
 * (100–300 ms each on an idle machine); below these, the tasks run on the calling thread. A backup of
 * 65,536 entries takes about that long to encode and compress, a check of 64 MiB to hash and decode.
 * Tests lower them to exercise the pool on small databases.
 */
export const pooledWorkMin = { backupEntries: 65_536, checkBytes: 64 * 1024 * 1024 };

/** Tasks run so far in this process, in a pool and on the calling thread: what tests look at. */
export const partitionTaskCounts = { pooled: 0, inline: 0 };

/**
 * Runs one task per partition in a piscina pool, the pool made for this call and destroyed when the
 * last task settled: backup, verify and restore spend their time per partition (reading a tree,
 * compressing, hashing, fsyncing), and a pool spreads that over the cores instead of one thread.
 * Every task settles before this returns or throws, so a failure never leaves a task still writing
 * into a directory the caller is about to remove; the first failure (in partition order) is thrown,
 * a worker's LightningError with its code given back.
 *
 * `taskModule` is the file name of a module in src/workers whose default export is the task.
 * `onDone` runs on this thread as each task finishes; if it throws, that is the failure. With
 * `inline` (the task module's loader), for work too small to repay starting threads, the tasks run
 * one by one on this thread instead.
 */
export async function runPartitionTasks<Task, Result>(
  taskModule: string,
  tasks: readonly Task[],
  onDone: (result: Result, index: number) => void,
  inline: null | (() => Promise<{ default: (task: Task) => Promise<Result> }>),
): Promise<Result[]> {
  if (tasks.length === 0) return [];
  if (inline !== null) {
    const run = (await inline()).default;
    const results: Result[] = [];
    for (const [index, task] of tasks.entries()) {
      const result = await run(task);
      partitionTaskCounts.inline++;
      onDone(result, index);
      results.push(result);
    }
    return results;
  }
  const { Piscina } = await import('piscina');
  const threads = Math.max(1, Math.min(tasks.length, availableParallelism()));
  const pool = new Piscina({ filename: taskFile(taskModule), minThreads: 0, maxThreads: threads });
  try {
    const settled = await Promise.allSettled(
      tasks.map(async (task, index) => {
        const result = (await pool.run(task)) as Result;
        partitionTaskCounts.pooled++;
        onDone(result, index);
        return result;
      }),
    );
    const results: Result[] = [];
    for (const outcome of settled) {
      if (outcome.status === 'rejected') throw reviveLightningError(outcome.reason) ?? outcome.reason;
      results.push(outcome.value);
    }
    return results;
  } finally {
    await pool.destroy();
  }
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
    'export default task.default;\n';
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = join(tmpdir(), `lightning-db-task-${digest}.mjs`);
  writeFileSync(file, source);
  return file;
}

/**
 * `npm start`: a short tour of lightning-db on ./data. The main thread writes through the partition
 * owners while an app worker attached to the same database reads the same memory synchronously and
 * writes too. Run it twice: the second run finds the first run's data, recovered from ./data.
 */
import { Worker } from 'node:worker_threads';
import { open } from './index.js';

const recordCount = 100_000;
const keyOf = (i: number): string => `user:${String(i).padStart(8, '0')}`;

async function main(): Promise<void> {
  const opening = performance.now();
  const db = await open('./data');
  const openMs = performance.now() - opening;
  const opened = db.stats();
  console.log(
    `opened ./data in ${openMs.toFixed(0)} ms: ${opened.partitions} partitions owned by ${opened.workers} worker threads, durability '${opened.durability}'; ${opened.entries} entries recovered from disk`,
  );

  const reader = new Worker(new URL('./demo-worker.js', import.meta.url), {
    workerData: { handle: db.share(), recordCount },
  });
  const workerReport = new Promise<{ gets: number; found: number; wrote: string }>((resolve, reject) => {
    reader.once('message', resolve);
    reader.once('error', reject);
  });

  let started = performance.now();
  const writes: Promise<void>[] = [];
  for (let i = 0; i < recordCount; i++) writes.push(db.put(keyOf(i), `{"id":${i},"name":"user ${i}"}`));
  await Promise.all(writes);
  const putMs = performance.now() - started;
  console.log(
    `main thread: ${recordCount} puts acknowledged in ${putMs.toFixed(0)} ms (issued without awaiting each)`,
  );

  const fromWorker = await workerReport;
  console.log(
    `app worker: ${fromWorker.gets} synchronous gets from shared memory while the main thread wrote (${fromWorker.found} found), then wrote ${fromWorker.wrote}`,
  );
  console.log(
    `main thread reads the worker's write: ${fromWorker.wrote} → ${db.getString(fromWorker.wrote)}`,
  );

  started = performance.now();
  let found = 0;
  for (let i = 0; i < recordCount; i++) if (db.get(keyOf(i)) !== undefined) found++;
  console.log(`main thread: ${found} gets in ${(performance.now() - started).toFixed(0)} ms`);
  const firstThree = [...db.range({ gte: 'user:00000100', limit: 3 })].map(([key]) => key.toString());
  console.log(`range({ gte: 'user:00000100', limit: 3 }) → ${firstThree.join(', ')}`);
  await db.del(keyOf(100));
  await db.batch([
    { type: 'put', key: 'counter', value: '1' },
    { type: 'put', key: 'counter', value: '2' },
  ]);
  console.log(
    `after del: ${keyOf(100)} → ${String(db.getString(keyOf(100)))}; batch → counter = ${db.getString('counter')}`,
  );

  const stats = db.stats();
  for (const worker of stats.workerStats) {
    console.log(
      `worker ${worker.worker}: partitions ${worker.partitions.join(',')}; ${worker.operations} writes in ${worker.batches} batches (largest ${worker.batchSizeMax})`,
    );
  }
  const checkpoints = await db.checkpoint();
  const checkpointBytes = checkpoints.reduce((sum, result) => sum + result.bytes, 0);
  console.log(`checkpoint: ${checkpoints.length} partitions written, ${checkpointBytes} bytes on disk`);
  await db.close();
  console.log(
    `closed; ${stats.entries} entries in ${stats.partitionStats.reduce((n, p) => n + p.pagesInUse, 0)} pages. Run npm start again to see them recovered.`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

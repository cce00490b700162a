/**
 * `npm start`: a short tour of the shared-memory B+Tree. The main thread owns a tree and writes to it
 * while a worker thread attached to the same memory reads it concurrently, with no messages on the
 * read path. Nothing is written to disk: durability arrives with the write-ahead log.
 */
import { Worker } from 'node:worker_threads';
import { BTree, checkTree } from './index.js';

const recordCount = 200_000;

function keyOf(i: number): string {
  return `user:${String(i).padStart(8, '0')}`;
}

async function main(): Promise<void> {
  const tree = BTree.create();
  console.log(
    `created a tree: ${tree.stats().pageSizeBytes}-byte pages, up to ${tree.stats().bytesMax} bytes`,
  );

  const reader = new Worker(new URL('./demo-reader.js', import.meta.url), {
    workerData: { handle: tree.share(), recordCount },
  });
  const readerDone = new Promise<{ gets: number; hits: number; scans: number }>((resolve, reject) => {
    reader.once('message', resolve);
    reader.once('error', reject);
  });

  const started = performance.now();
  for (let i = 0; i < recordCount; i++) tree.put(keyOf(i), `{"id":${i},"name":"user ${i}"}`);
  const loadMs = performance.now() - started;
  console.log(
    `main thread: put ${recordCount} records in ${loadMs.toFixed(0)} ms while a worker was reading`,
  );

  const fromWorker = await readerDone;
  console.log(
    `worker thread: ${fromWorker.gets} point reads (${fromWorker.hits} found so far), ${fromWorker.scans} range scans, straight from shared memory`,
  );

  console.log(`get(${keyOf(42)}) → ${tree.get(keyOf(42))?.toString()}`);
  const firstThree = [...tree.range({ gte: 'user:00000100', limit: 3 })].map(([k]) => k.toString());
  console.log(`range({ gte: 'user:00000100', limit: 3 }) → ${firstThree.join(', ')}`);
  const lastTwo = [...tree.range({ reverse: true, limit: 2 })].map(([k]) => k.toString());
  console.log(`range({ reverse: true, limit: 2 }) → ${lastTwo.join(', ')}`);

  for (let i = 0; i < recordCount; i += 2) tree.delete(keyOf(i));
  const report = checkTree(tree);
  const stats = tree.stats();
  console.log(
    `deleted every other record: ${stats.entries} entries, height ${stats.height}, ${stats.pagesInUse} pages in use, ` +
      `${stats.pagesFree} on the free list; checkTree passed (average node fill ${(report.fillAverage * 100).toFixed(0)}%)`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/** The reader side of `npm start`: attaches to the main thread's tree and reads while it is written. */
import { parentPort, workerData } from 'node:worker_threads';
import { type TreeHandle, TreeReader } from './index.js';

const { handle, recordCount } = workerData as { handle: TreeHandle; recordCount: number };
const reader = TreeReader.attach(handle);
let gets = 0;
let hits = 0;
let scans = 0;
// Read until the writer has loaded everything, then report.
while (reader.count < recordCount) {
  const i = Math.floor(Math.random() * recordCount);
  if (reader.get(`user:${String(i).padStart(8, '0')}`) !== undefined) hits++;
  gets++;
  if (gets % 1000 === 0) {
    for (const _ of reader.range({ gte: 'user:0001', limit: 50 })) scans += 0;
    scans++;
  }
}
parentPort!.postMessage({ gets, hits, scans });

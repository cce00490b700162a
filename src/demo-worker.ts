/** The app worker of `npm start`: attaches to the main thread's database, reads while it is written, writes once. */
import { parentPort, workerData } from 'node:worker_threads';
import { attach, type DatabaseHandle } from './index.js';

const { handle, recordCount } = workerData as { handle: DatabaseHandle; recordCount: number };
const db = await attach(handle);
let gets = 0;
let found = 0;
const last = `user:${String(recordCount - 1).padStart(8, '0')}`;
// Read until the main thread's last write is visible here, yielding now and then so writes flow.
while (db.get(last) === undefined) {
  for (let i = 0; i < 1000; i++) {
    const key = `user:${String(Math.floor(Math.random() * recordCount)).padStart(8, '0')}`;
    if (db.get(key) !== undefined) found++;
    gets++;
  }
  await new Promise((resolve) => setImmediate(resolve));
}
const wrote = 'from-worker';
await db.put(wrote, `written by an attached worker after ${gets} reads`);
await db.close();
parentPort!.postMessage({ gets, found, wrote });

/**
 * One reader thread of the scaling run: an app worker that attaches to the database (`attach(handle)`)
 * and does synchronous zipfian gets (workload C) from shared memory. It draws its keys before the
 * start signal, warms up, reports ready, then waits for the signal so all threads start together.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { randomDoubles, ScrambledZipfianGenerator } from './generators.js';
import { KeyTable } from './keys.js';
import { foldBytes, foldSeed } from './stores.js';

export interface ReaderData {
  handle: unknown;
  keyTable: SharedArrayBuffer;
  keyCount: number;
  operations: number;
  seed: number;
  thread: number;
  /** Int32Array over it: [0] becomes 1 when the threads may start. */
  startSignal: SharedArrayBuffer;
}

export interface ReaderDone {
  kind: 'done';
  thread: number;
  seconds: number;
  missing: number;
  checksum: number;
}

const warmupGets = 20_000;

const data = workerData as ReaderData;
const { attach } = await import('../../src/index.js');
const db = await attach(data.handle);
const keys = new KeyTable(data.keyCount, data.keyTable);
const chooser = new ScrambledZipfianGenerator(
  data.keyCount,
  randomDoubles((data.seed ^ (data.thread * 0x9e3779b1)) >>> 0),
);
const order = new Uint32Array(data.operations);
for (let i = 0; i < order.length; i++) order[i] = chooser.next();

let warmupHash = foldSeed;
for (let i = 0; i < Math.min(warmupGets, order.length); i++) {
  const value = db.get(keys.buffer(order[order.length - 1 - i]!));
  if (value !== undefined) warmupHash = foldBytes(warmupHash, value);
}
parentPort!.postMessage({ kind: 'ready', thread: data.thread, warmupHash });
const signal = new Int32Array(data.startSignal);
Atomics.wait(signal, 0, 0);

let hash = foldSeed;
let missing = 0;
const start = performance.now();
for (let i = 0; i < order.length; i++) {
  const value = db.get(keys.buffer(order[i]!));
  if (value === undefined) missing++;
  else hash = foldBytes(hash, value);
}
const seconds = (performance.now() - start) / 1000;
const done: ReaderDone = { kind: 'done', thread: data.thread, seconds, missing, checksum: hash >>> 0 };
parentPort!.postMessage(done);
await db.close();

/**
 * A reader thread of bench:pool: attaches to the pool, waits for the start signal, does its reads
 * (uniform or scrambled zipfian page ids), checking the sampled byte of every validated read.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BufferPool } from '../../src/shared-memory/pool/buffer-pool.js';
import { PageFileReader } from '../../src/storage/page-file/page-file-reader.js';
import { randomDoubles, ScrambledZipfianGenerator } from '../ycsb/generators.js';
import { benchPageSize, sampleAt, sampleByte } from './page-file-builder.js';

export interface ReaderInput {
  sab: SharedArrayBuffer;
  dir: string;
  pageCount: number;
  reads: number;
  distribution: 'uniform' | 'zipfian';
  seed: number;
  /** [0]: the start signal (the parent sets 1 and notifies). */
  start: SharedArrayBuffer;
}

const input = workerData as ReaderInput;
const reader = await PageFileReader.open(input.dir, { pageSizeBytes: benchPageSize, partition: 0 });
const pool = BufferPool.attach(input.sab, reader);
const random = randomDoubles(input.seed);
const zipfian = new ScrambledZipfianGenerator(input.pageCount, random);
const nextPage =
  input.distribution === 'zipfian'
    ? () => 1 + zipfian.next()
    : () => 1 + Math.floor(random() * input.pageCount);
const start = new Int32Array(input.start);
parentPort!.postMessage({ type: 'ready' });
Atomics.wait(start, 0, 0);
let wrong = 0;
let restarts = 0;
for (let done = 0; done < input.reads; ) {
  const pageId = nextPage();
  const offset = pool.read(pageId);
  const byte = pool.u8[offset + sampleAt];
  if (!pool.validate(pageId, pool.version)) {
    restarts++;
    continue;
  }
  if (byte !== sampleByte(pageId)) wrong++;
  done++;
}
pool.detach();
reader.close();
parentPort!.postMessage({ type: 'done', wrong, restarts });

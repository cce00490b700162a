/**
 * What a put costs the calling thread: main-thread busy time (event-loop utilization) and garbage
 * collections per put, with 16-byte random keys and 100-byte values (Buffers, as bench:durability),
 * issued in windows of 1,000 and awaited together. The owners' work and the disk are not counted: they
 * run on other threads. Use it to compare builds of the caller's write path on one machine.
 *
 *   npm run build && node dist/bench/put-caller-cost.js [--records 200000] [--durability none|relaxed|sync]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { open } from '../src/index.js';
import { parseArgumentsOrExit, parseOneOf, parsePositiveInteger } from './lib/args.js';
import { randomRecords } from './lib/rng.js';

const keyBytes = 16;
const valueBytes = 100;
const window = 1_000;
const durabilities = ['none', 'relaxed', 'sync'] as const;

interface Options {
  records: number;
  durability: (typeof durabilities)[number];
}

function parseArguments(argv: string[]): Options {
  const options: Options = { records: 200_000, durability: 'none' };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--records') options.records = parsePositiveInteger('--records', argv[i + 1]);
    else if (argv[i] === '--durability')
      options.durability = parseOneOf('--durability', durabilities, argv[i + 1]);
    else throw new Error(`unknown flag ${argv[i]}`);
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseArgumentsOrExit(() => parseArguments(process.argv.slice(2)));
  const keys = randomRecords(options.records, keyBytes, 1);
  const values = randomRecords(options.records, valueBytes, 2);
  const keyViews = Array.from({ length: options.records }, (_, i) =>
    keys.subarray(i * keyBytes, (i + 1) * keyBytes),
  );
  const valueViews = Array.from({ length: options.records }, (_, i) =>
    values.subarray(i * valueBytes, (i + 1) * valueBytes),
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lightning-put-caller-'));
  const db = await open(dir, { durability: options.durability });
  let collections = 0;
  let collectionMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      collections++;
      collectionMs += entry.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const utilizationBefore = performance.eventLoopUtilization();
  const startedMs = performance.now();
  for (let from = 0; from < options.records; from += window) {
    const to = Math.min(options.records, from + window);
    const pending: Promise<void>[] = [];
    for (let i = from; i < to; i++) pending.push(db.put(keyViews[i]!, valueViews[i]!));
    await Promise.all(pending);
  }
  const elapsedMs = performance.now() - startedMs;
  const utilization = performance.eventLoopUtilization(utilizationBefore);
  // Let the last GC entries arrive before reading them.
  await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  let checked = 0;
  for (let i = 0; i < options.records; i += Math.max(1, Math.floor(options.records / 1000))) {
    if (!db.get(keyViews[i]!)?.equals(valueViews[i]!)) throw new Error(`record ${i} did not read back`);
    checked++;
  }
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  const perPut = (ms: number): string => `${((1000 * ms) / options.records).toFixed(2)} µs`;
  console.log(
    [
      `${options.records} puts, durability ${options.durability}, windows of ${window}: ${(options.records / (elapsedMs / 1000)).toFixed(0)} puts/s`,
      `main thread busy ${utilization.active.toFixed(0)} ms = ${perPut(utilization.active)} per put`,
      `garbage collections on the main thread: ${collections} taking ${collectionMs.toFixed(1)} ms = ${perPut(collectionMs)} per put`,
      `${checked} records read back`,
    ].join('\n'),
  );
}

await main();

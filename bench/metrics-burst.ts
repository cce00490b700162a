/**
 * What a burst of /metrics scrapes costs the writers: puts/s on the thread that serves the admin
 * server, for `--seconds` without scrapes, then for as long again with a burst of `--scrapes` GET
 * /metrics requests over loopback HTTP from a separate process (`--concurrency` at a time), in the
 * same run, `--rounds` times. Puts are issued in windows of 1,000 awaited together, 16-byte keys over
 * a keyspace of 100,000, 100-byte values. Prints, per round, puts/s in each phase and during the burst
 * itself, their ratio, the CPU-seconds of this process and of the scraper, how busy this thread's
 * event loop was and its delay (p99, max), and the scrapes answered with status 200 and their bytes (a
 * wrong fast answer shows there); then the median ratio and the serving-thread busy time each request
 * added.
 *
 *   npm run bench:metrics -- [--seconds 5] [--scrapes 2000] [--concurrency 8] [--path /metrics]
 *                            [--cache-ms 1000] [--rounds 3] [--durability relaxed]
 *
 * On a machine whose cores are all busy, the scraper process competes with the database's threads for
 * CPU: compare with `--path /none` (404s, no collection) to see what the HTTP requests alone cost.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { open } from '../src/index.js';
import { parseArgumentsOrExit, parseOneOf, parsePositiveInteger } from './lib/args.js';
import { randomRecords } from './lib/rng.js';
import { median } from './lib/stats.js';

const keyBytes = 16;
const valueBytes = 100;
const keyspace = 100_000;
const window = 1_000;
const durabilities = ['none', 'relaxed', 'sync'] as const;
const nanosPerMilli = 1e6;

interface Options {
  seconds: number;
  scrapes: number;
  concurrency: number;
  /** What the burst requests: /metrics, or another path to compare with (a 404 costs no collection). */
  path: string;
  rounds: number;
  /** The admin server's metricsCacheMs: 0 collects on every scrape. */
  cacheMs: number;
  durability: (typeof durabilities)[number];
}

interface PhaseResult {
  puts: number;
  elapsedMs: number;
  cpuSeconds: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Event-loop utilization of this (the serving) thread: the share of the phase it was busy. */
  loopUtilization: number;
  /** Puts acknowledged between the burst's start and its end (burst phase only). */
  burstPuts: number;
  burstMs: number;
}

interface ScraperReport {
  ok: number;
  failed: number;
  bytes: number;
  ms: number;
  cpuSeconds: number;
}

function parseArguments(argv: string[]): Options {
  const options: Options = {
    seconds: 5,
    scrapes: 2000,
    concurrency: 8,
    path: '/metrics',
    cacheMs: 1000,
    rounds: 3,
    durability: 'relaxed',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--seconds') options.seconds = parsePositiveInteger(flag, value);
    else if (flag === '--scrapes') options.scrapes = parsePositiveInteger(flag, value);
    else if (flag === '--concurrency') options.concurrency = parsePositiveInteger(flag, value);
    else if (flag === '--path' && value?.startsWith('/') === true) options.path = value;
    else if (flag === '--cache-ms') options.cacheMs = value === '0' ? 0 : parsePositiveInteger(flag, value);
    else if (flag === '--rounds') options.rounds = parsePositiveInteger(flag, value);
    else if (flag === '--durability') options.durability = parseOneOf(flag, durabilities, value);
    else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

/**
 * The scraper, plain JavaScript in a child process so that its own work (parsing responses) is not on
 * the measured thread: `count` GETs of `url`, `concurrency` at a time over kept-alive connections,
 * asking for gzip as Prometheus does (the bytes counted are the compressed ones).
 */
const scraperSource = `
const http = require('node:http');
const [url, count, concurrency] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
let started = 0, ok = 0, failed = 0, bytes = 0;
const begin = performance.now();
function one() {
  if (started >= count) return Promise.resolve();
  started++;
  return new Promise((resolve) => {
    http.get(url, { agent, headers: { 'accept-encoding': 'gzip' } }, (response) => {
      response.on('data', (chunk) => { bytes += chunk.length; });
      response.on('end', () => { if (response.statusCode === 200) ok++; else failed++; resolve(); });
    }).on('error', () => { failed++; resolve(); });
  }).then(one);
}
Promise.all(Array.from({ length: concurrency }, one)).then(() => {
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ ok, failed, bytes, ms: performance.now() - begin,
    cpuSeconds: (cpu.user + cpu.system) / 1e6 }) + '\\n');
  agent.destroy();
});
`;

function runScraper(url: string, options: Options): Promise<ScraperReport> {
  const child = spawn(
    process.execPath,
    ['-e', scraperSource, url, String(options.scrapes), String(options.concurrency)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the scraper exited with code ${code}`));
      else resolve(JSON.parse(output.trim()) as ScraperReport);
    });
  });
}

async function main(): Promise<void> {
  const options = parseArgumentsOrExit(() => parseArguments(process.argv.slice(2)));
  const keys = randomRecords(keyspace, keyBytes, 1);
  const values = randomRecords(window, valueBytes, 2);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lightning-metrics-burst-'));
  const db = await open(dir, { durability: options.durability });
  const admin = await db.serveAdmin({ port: 0, metricsCacheMs: options.cacheMs });
  let next = 0;
  /** Puts in windows of 1,000 until `deadline`; `onWindow` sees each acknowledged window. */
  async function putUntil(deadlineMs: number, onWindow: (atMs: number) => void): Promise<number> {
    let puts = 0;
    while (performance.now() < deadlineMs) {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < window; i++, next++) {
        const k = next % keyspace;
        pending.push(
          db.put(
            keys.subarray(k * keyBytes, (k + 1) * keyBytes),
            values.subarray(i * valueBytes, (i + 1) * valueBytes),
          ),
        );
      }
      await Promise.all(pending);
      puts += window;
      onWindow(performance.now());
    }
    return puts;
  }

  async function phase(withBurst: boolean): Promise<{ result: PhaseResult; scraper: ScraperReport | null }> {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const cpuBefore = process.cpuUsage();
    const utilizationBefore = performance.eventLoopUtilization();
    const startedMs = performance.now();
    let burstEndMs = Number.POSITIVE_INFINITY;
    let burstPuts = 0;
    const scraping = withBurst
      ? runScraper(`${admin.url}${options.path}`, options).then((report) => {
          burstEndMs = performance.now();
          return report;
        })
      : null;
    const puts = await putUntil(startedMs + options.seconds * 1000, (atMs) => {
      if (atMs <= burstEndMs) burstPuts += window;
    });
    const elapsedMs = performance.now() - startedMs;
    const scraper = scraping === null ? null : await scraping;
    const cpu = process.cpuUsage(cpuBefore);
    const utilization = performance.eventLoopUtilization(utilizationBefore);
    delay.disable();
    return {
      result: {
        puts,
        elapsedMs,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        loopDelayP99Ms: delay.percentile(99) / nanosPerMilli,
        loopDelayMaxMs: delay.max / nanosPerMilli,
        loopUtilization: utilization.utilization,
        burstPuts: withBurst ? burstPuts : 0,
        burstMs: withBurst ? Math.min(burstEndMs, startedMs + elapsedMs) - startedMs : 0,
      },
      scraper,
    };
  }

  // A short warm-up, so neither phase pays for compilation and the first allocations.
  await putUntil(performance.now() + 1000, () => {});
  const rate = (puts: number, ms: number): number => puts / (ms / 1000);
  const line = (name: string, r: PhaseResult, puts: number): string =>
    `  ${name}: ${puts.toFixed(0)} puts/s, ${r.cpuSeconds.toFixed(2)} CPU-s in ${(r.elapsedMs / 1000).toFixed(2)} s, ` +
    `event loop ${(100 * r.loopUtilization).toFixed(0)}% busy, delay p99 ${r.loopDelayP99Ms.toFixed(1)} ms, ` +
    `max ${r.loopDelayMaxMs.toFixed(1)} ms`;
  console.log(
    `metrics-burst: ${options.rounds} rounds of ${options.seconds} s without scrapes, then ${options.seconds} s with a burst; ` +
      `durability ${options.durability}, windows of ${window} puts, ${options.scrapes} GETs of ${options.path} ` +
      `at concurrency ${options.concurrency}, metricsCacheMs ${options.cacheMs}`,
  );
  const ratios: number[] = [];
  const duringRatios: number[] = [];
  const servingMsPerScrape: number[] = [];
  let answered = 0;
  for (let round = 1; round <= options.rounds; round++) {
    const quiet = (await phase(false)).result;
    const { result: burst, scraper } = await phase(true);
    const quietRate = rate(quiet.puts, quiet.elapsedMs);
    const burstRate = rate(burst.puts, burst.elapsedMs);
    const duringRate = rate(burst.burstPuts, burst.burstMs);
    ratios.push(burstRate / quietRate);
    duringRatios.push(duringRate / quietRate);
    // What the burst added to this thread's busy time, per request.
    const busyMs = (r: PhaseResult): number => r.loopUtilization * r.elapsedMs;
    servingMsPerScrape.push((busyMs(burst) - busyMs(quiet)) / options.scrapes);
    answered += scraper!.ok;
    console.log(
      [
        `round ${round}:`,
        line('no scrapes  ', quiet, quietRate),
        line('with burst  ', burst, burstRate),
        `  during burst: ${duringRate.toFixed(0)} puts/s over ${burst.burstMs.toFixed(0)} ms; scraper: ` +
          `${scraper!.ok} answered 200, ${scraper!.failed} other, ${(scraper!.bytes / options.scrapes).toFixed(0)} bytes each, ` +
          `${scraper!.ms.toFixed(0)} ms, ${scraper!.cpuSeconds.toFixed(2)} CPU-s`,
        `  ratio with burst / without: ${ratios.at(-1)!.toFixed(3)} (during the burst: ${duringRatios.at(-1)!.toFixed(3)})`,
      ].join('\n'),
    );
  }
  const checked = db.get(keys.subarray(0, keyBytes)) !== undefined;
  await admin.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `median ratio puts/s with burst / without: ${median(ratios).toFixed(3)} (during the burst: ${median(duringRatios).toFixed(3)}); ` +
      `serving-thread busy time added per request: ${median(servingMsPerScrape).toFixed(3)} ms; last key read back: ${checked}`,
  );
  const expected = options.path === '/metrics' ? options.rounds * options.scrapes : answered;
  if (answered !== expected || !checked) process.exitCode = 1;
}

await main();

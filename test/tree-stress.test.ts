/**
 * Multi-thread stress test of the shared-memory B+Tree: one writer worker inserts, overwrites and
 * deletes over a bounded key space (splits, merges, root growth and collapse, overflow chains written
 * and freed) while reader workers attached to the same SharedArrayBuffer get and scan without
 * locks. See fixtures/stress-values.ts for what every read is checked against.
 *
 * Environment:
 *   LIGHTNING_STRESS_MS   duration of the write phase (default 4000; `npm run test:stress` uses 60000)
 *   LIGHTNING_SEED        u32 seed, decimal or 0x-hex (default below); printed at start and on failure.
 *                         It replays the writer's operation sequence, not the thread interleaving.
 *   LIGHTNING_CHECK_TREE  =1: the writer runs checkTree after every operation (slow, for stress runs)
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import {
  assertKeySpaceSorted,
  buildKeySpace,
  controlSlots,
  ctrlReaderOpsBase,
  ctrlStop,
  ctrlWriterKey,
  ctrlWriterOpKind,
  ctrlWriterOps,
  ctrlWriterPhase,
  defaultSeed,
  opKindNames,
  parseSeed,
  phaseNames,
  type ReaderInput,
  type ReaderMessage,
  type ReaderResult,
  type WriterInput,
  type WriterMessage,
  type WriterReady,
  type WriterResult,
} from './fixtures/stress-values.js';

const durationMs = readDuration();
const seed = parseSeed(process.env.LIGHTNING_SEED) ?? defaultSeed;
const checkEveryOp = process.env.LIGHTNING_CHECK_TREE === '1';
/** checkTree after every op costs O(tree) per op, so that mode uses a smaller (still tall) key space. */
const keySpace = checkEveryOp ? 400 : 2000;
/** Two readers on small machines (the writer and the readers must all get a core to overlap). */
const readerCount = availableParallelism() >= 4 ? 3 : 2;

/**
 * Proof that the readers raced the writer: reads that restarted (a page changed under them) and
 * reader operations during which a write completed. The writer waits for them past its duration, as
 * for its first drain, so a slow machine shortens no coverage. Default runs on a loaded two-core
 * machine saw hundreds to thousands of restarts and dozens of overlaps per reader.
 */
const restartsWanted = 100;
const overlapsWanted = 20;
/** The writer gives up waiting for the race after this many more operations (several runs' worth). */
const extraOpsMax = 40_000;
/** Time those extra operations may take on a slow, loaded machine, added to the writer's margin. */
const extraOpsMarginMs = 150_000;

/** Worker start-up includes tsx compiling the tree sources; generous because CI machines are slow. */
const startupMs = 60_000;
/** Slack after the duration for the writer's last operation, final checkTree and full verification. */
const writerMarginMs = 20_000 + Math.round(durationMs * 0.25) + extraOpsMarginMs;
/** Readers must notice the stop flag within one operation and then do one full pass. */
const readerMarginMs = 20_000;
/**
 * Less work than this means the readers were starved, so the run proved little: the writer goes on
 * past its duration until every reader did this much (or the extra operations run out), so a slow
 * machine lengthens the run instead of failing it.
 */
const workScale = Math.min(1, durationMs / 4000);
const minGets = Math.ceil(1000 * workScale);
const minScans = Math.ceil(100 * workScale);

function readDuration(): number {
  const text = process.env.LIGHTNING_STRESS_MS;
  if (text === undefined || text.trim() === '') return 4000;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`LIGHTNING_STRESS_MS must be a positive integer`);
  return value;
}

const seedText = `0x${seed.toString(16)}`;
const replay =
  `LIGHTNING_SEED=${seedText} LIGHTNING_STRESS_MS=${durationMs}` +
  `${checkEveryOp ? ' LIGHTNING_CHECK_TREE=1' : ''} npx vitest run test/tree-stress.test.ts`;

/**
 * tsx's ESM register API, resolved from this file through tsx's package exports. (require.resolve
 * would pick its CommonJS build, whose register() fails to load its hooks inside a worker.)
 */
const tsxApiUrl = ((): string => {
  const requireHere = createRequire(import.meta.url);
  const manifestPath = requireHere.resolve('tsx/package.json');
  const manifest = requireHere(manifestPath) as { exports: { './esm/api': { import: { default: string } } } };
  return pathToFileURL(join(dirname(manifestPath), manifest.exports['./esm/api'].import.default)).href;
})();

/**
 * Starts a worker running a TypeScript module. `new Worker(url, { execArgv: ['--import', 'tsx'] })`
 * does not work on Node 20: a worker never runs `--import` preloads from its execArgv (observed on
 * 20.20, where it fails with ERR_UNKNOWN_FILE_EXTENSION; related: nodejs/node#47747). So a tiny eval
 * bootstrap registers tsx's loader hooks inside the worker and then imports the module.
 */
function startTsWorker(url: URL, workerData: WriterInput | ReaderInput): Worker {
  const bootstrap =
    `import(${JSON.stringify(tsxApiUrl)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** Rejects with a descriptive error when `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, describe: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${describe()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Message plumbing for one worker: typed messages in, and a crash or early exit as a rejection. */
function watch<M>(worker: Worker, name: string, onMessage: (message: M) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    worker.on('message', onMessage);
    worker.on('error', (error) => reject(new Error(`${name} crashed: ${error.stack ?? String(error)}`)));
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited with ${code}`))));
  });
}

it(
  `shared-memory tree: 1 writer + readers, concurrent splits/merges/overflow (${durationMs} ms)`,
  async () => {
    console.log(
      `[tree-stress] seed=${seedText} durationMs=${durationMs} checkEveryOp=${checkEveryOp} ` +
        `keySpace=${keySpace} readers=${readerCount}`,
    );
    const ks = buildKeySpace(keySpace);
    assertKeySpaceSorted(ks);

    const controlBuffer = new SharedArrayBuffer(4 * controlSlots);
    const control = new Int32Array(controlBuffer);
    const workers: Worker[] = [];
    const progress = (): string => {
      const readerOps = Array.from({ length: readerCount }, (_, r) =>
        Atomics.load(control, ctrlReaderOpsBase + r),
      );
      return (
        `writer at op ${Atomics.load(control, ctrlWriterOps)} ` +
        `(${opKindNames[Atomics.load(control, ctrlWriterOpKind)]} of key #${Atomics.load(control, ctrlWriterKey)}, ` +
        `phase ${phaseNames[Atomics.load(control, ctrlWriterPhase)]}); reader ops ${readerOps.join(', ')}`
      );
    };

    const started = performance.now();
    let writerResult: WriterResult | undefined;
    const readerResults: ReaderResult[] = [];
    try {
      const writerInput: WriterInput = {
        seed,
        durationMs,
        restartsWanted,
        overlapsWanted,
        getsWanted: minGets,
        scansWanted: minScans,
        extraOpsMax,
        checkEveryOp,
        keySpace,
        readerCount,
        control: controlBuffer,
      };
      const writer = startTsWorker(new URL('./fixtures/tree-stress-writer.ts', import.meta.url), writerInput);
      workers.push(writer);
      let onReady: (ready: WriterReady) => void = () => {};
      const ready = new Promise<WriterReady>((resolve) => {
        onReady = resolve;
      });
      const writerDone = watch<WriterMessage>(writer, 'writer', (message) => {
        if (message.type === 'ready') onReady(message);
        else writerResult = message;
      });
      // Crashes are awaited later; mark them handled now so Node does not report them as unhandled.
      writerDone.catch(() => {});
      // A writer that fails during setup posts its result and exits without 'ready'.
      const readyOrExit = Promise.race([ready, writerDone.then(() => undefined)]);
      const handle = await within(readyOrExit, startupMs, () => `writer never became ready; ${progress()}`);

      if (handle !== undefined) {
        const readersDone: Promise<void>[] = [];
        const readersReady: Promise<void>[] = [];
        for (let readerId = 0; readerId < readerCount; readerId++) {
          const readerInput: ReaderInput = {
            seed,
            readerId,
            keySpace,
            handle: handle.handle,
            state: handle.state,
            control: controlBuffer,
          };
          const reader = startTsWorker(
            new URL('./fixtures/tree-stress-reader.ts', import.meta.url),
            readerInput,
          );
          workers.push(reader);
          let onReaderReady: () => void = () => {};
          readersReady.push(
            new Promise<void>((resolve) => {
              onReaderReady = resolve;
            }),
          );
          const markReady = onReaderReady;
          const readerDone = watch<ReaderMessage>(reader, `reader ${readerId}`, (message) => {
            if (message.type === 'ready') markReady();
            else readerResults.push(message);
          });
          readerDone.catch(() => {});
          readersDone.push(readerDone);
        }
        // A reader that crashes on attach never becomes ready: surface its error instead of waiting.
        const exitedEarly = readersDone.map((done, r) =>
          done.then(() => Promise.reject(new Error(`reader ${r} exited before attaching`))),
        );
        for (const p of exitedEarly) p.catch(() => {});
        await within(Promise.race([Promise.all(readersReady), ...exitedEarly]), startupMs, () => {
          return `readers did not attach; ${progress()}`;
        });
        try {
          await within(writerDone, durationMs + writerMarginMs, () => `writer hung; ${progress()}`);
        } finally {
          // Readers run until the writer is done (or the run failed), then do a final exact pass.
          Atomics.store(control, ctrlStop, 1);
        }
        await within(Promise.all(readersDone), readerMarginMs, () => `a reader hung; ${progress()}`);
      } else {
        await writerDone;
      }
    } catch (error) {
      throw new Error(`[tree-stress] seed=${seedText}: ${String(error)}\nreplay: ${replay}`);
    } finally {
      Atomics.store(control, ctrlStop, 1);
      // terminate() also stops a worker spinning in a loop; a no-op for workers that already exited.
      await Promise.all(workers.map((worker) => worker.terminate()));
    }
    const elapsedMs = Math.round(performance.now() - started);

    const problems: string[] = [];
    const w = writerResult;
    if (w === undefined) problems.push('writer exited without a result');
    else problems.push(...w.failures);
    if (readerResults.length !== readerCount)
      problems.push(`${readerResults.length}/${readerCount} reader results`);
    for (const r of readerResults) {
      if (r.violations > 0) problems.push(`reader ${r.readerId}: ${r.violations} violations`, ...r.samples);
      if (!r.finalPass) problems.push(`reader ${r.readerId} did not complete its final pass`);
    }
    // Coverage: did the run exercise what it claims to? Only judged when nothing failed: a failure
    // stops the writer early, and the resulting shortfall would only bury the real problem.
    if (problems.length === 0 && w !== undefined) {
      if (w.heightMax < 3) problems.push(`tree never reached height 3 (max ${w.heightMax})`);
      if (w.drains.length === 0) problems.push('writer completed no drain phase (duration too short?)');
      else {
        const lowestHeight = Math.min(...w.drains.map((d) => d.height));
        const fewestPages = Math.min(...w.drains.map((d) => d.pagesInUse));
        if (lowestHeight >= w.heightMax) {
          problems.push(`height never went back down on drain (max ${w.heightMax}, drained ${lowestHeight})`);
        }
        if (fewestPages * 2 > w.pagesInUseMax) {
          problems.push(
            `pagesInUse did not shrink on drain (max ${w.pagesInUseMax}, drained ${fewestPages})`,
          );
        }
      }
      if (w.largeValues === 0) problems.push('writer wrote no overflow-sized value');
      // Readers that never restarted, or never read while a write completed, ran beside the writer
      // rather than against it, and proved nothing about concurrent reads.
      const restarts = readerResults.reduce((sum, r) => sum + r.restarts, 0);
      const overlaps = readerResults.reduce((sum, r) => sum + r.opsOverlappingWrites, 0);
      if (restarts === 0)
        problems.push(`no reader restarted in ${w.ops} writer ops (${w.extraOps} past the duration)`);
      if (overlaps === 0) {
        problems.push(
          `no reader operation overlapped a write in ${w.ops} writer ops (${w.extraOps} past the duration)`,
        );
      }
      for (const r of readerResults) {
        if (r.gets < minGets) problems.push(`reader ${r.readerId} did only ${r.gets} gets (< ${minGets})`);
        if (r.scans < minScans)
          problems.push(`reader ${r.readerId} did only ${r.scans} scans (< ${minScans})`);
      }
    }

    if (w !== undefined) {
      const { drains, failures: _, type: __, ...counts } = w;
      const span = (values: number[]): string =>
        values.length === 0 ? '-' : `${Math.min(...values)}..${Math.max(...values)}`;
      console.log(
        `[tree-stress] seed=${seedText} elapsed ${elapsedMs} ms; writer ${JSON.stringify(counts)}; ` +
          `${drains.length} drains ending at height ${span(drains.map((d) => d.height))}, ` +
          `pagesInUse ${span(drains.map((d) => d.pagesInUse))}`,
      );
    }
    for (const { samples: _, type: __, ...counts } of readerResults) {
      console.log(`[tree-stress] reader ${JSON.stringify(counts)}`);
    }
    if (problems.length > 0) console.log(`[tree-stress] problems:\n  ${problems.join('\n  ')}`);
    expect(problems, `[tree-stress] seed=${seedText}; replay: ${replay}`).toEqual([]);
  },
  startupMs * 2 + durationMs + writerMarginMs + readerMarginMs + 10_000,
);

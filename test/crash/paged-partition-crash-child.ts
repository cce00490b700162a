/**
 * The child of test/paged-partition-crash.test.ts: opens the partition (run `epoch`) and applies the
 * seeded operations until it is SIGKILLed, reporting "A <index>" once operation `index` is durable and
 * applied, "P <redo LSN> <log segments removed>" after each checkpoint, and "R <redo LSN> 0" after a page set
 * written because the pool was full.
 *
 *   node --import tsx test/crash/paged-partition-crash-child.ts <dir> <seed> <epoch>
 */
import { runPagedWrites } from '../fixtures/paged-partition-cycles.js';
import { fail, report } from './report-pipe.js';

const [dir, seedText, epochText] = process.argv.slice(2);
if (dir === undefined || seedText === undefined || epochText === undefined)
  fail('usage: paged-partition-crash-child.ts <dir> <seed> <epoch>');

try {
  await runPagedWrites(dir, Number(seedText), Number(epochText), Number.POSITIVE_INFINITY, {
    acknowledged: (index) => report(`A ${index}\n`),
    pageSet: (redoLsn, forRoom, removed) => report(`${forRoom ? 'R' : 'P'} ${redoLsn} ${removed}\n`),
  });
} catch (error) {
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
}

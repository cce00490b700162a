/**
 * The child of test/pool-crash.test.ts's kill test: runs checkpoint cycles over a page file until it
 * is SIGKILLed, reporting "W <page> <generation>" before each write and "A <page>:<generation>,..."
 * after each checkpoint returned.
 *
 *   node --import tsx test/crash/pool-crash-child.ts <dir> <seed>
 */
import { runCheckpointCycles } from '../fixtures/pool-crash-cycles.js';
import { fail, report } from './report-pipe.js';

const [dir, seedText] = process.argv.slice(2);
if (dir === undefined || seedText === undefined) fail('usage: pool-crash-child.ts <dir> <seed>');

try {
  await runCheckpointCycles(dir, Number(seedText), Number.POSITIVE_INFINITY, {
    write: (pageId, generation) => report(`W ${pageId} ${generation}\n`),
    acknowledge: (pages) =>
      report(`A ${pages.map(([pageId, generation]) => `${pageId}:${generation}`).join(',')}\n`),
  });
} catch (error) {
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
}

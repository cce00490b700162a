/**
 * The child of test/tree-pool-crash.test.ts's kill test: a tree over a buffer pool takes writes and
 * writes its pages back until it is SIGKILLed, reporting "M <meta page id>" once the empty tree is in
 * the file, "S <n> <digest>" before write-back n and "D <n>" after it returned.
 *
 *   node --import tsx test/crash/tree-pool-crash-child.ts <dir> <seed>
 */
import { runTreeWriteBacks } from '../fixtures/tree-pool-cycles.js';
import { fail, report } from './report-pipe.js';

const [dir, seedText] = process.argv.slice(2);
if (dir === undefined || seedText === undefined) fail('usage: tree-pool-crash-child.ts <dir> <seed>');

try {
  await runTreeWriteBacks(
    dir,
    Number(seedText),
    Number.POSITIVE_INFINITY,
    {
      starting: (n, digest) => report(`S ${n} ${digest}\n`),
      done: (n) => report(`D ${n}\n`),
    },
    (metaPageId) => report(`M ${metaPageId}\n`),
  );
} catch (error) {
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
}

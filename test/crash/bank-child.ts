/**
 * The bank process that gets killed: opens the bank (durability 'sync', 16 partitions) and runs
 * transfers until SIGKILL, reporting every transfer it issues and every acknowledgement on file
 * descriptor 3 (the lines are in bank-protocol.ts). A line is written synchronously before the call
 * it announces, and an acknowledgement in the promise's reaction, so a killed process has told the
 * parent about everything it was acknowledged.
 *
 *   node --import tsx test/crash/bank-child.ts <dir> <seed> <gen> <workers> <concurrency> [failpoint N]
 *
 * With a fail-point ('tx.after-prepare' or 'tx.after-decision', crash-after:N) the process kills
 * itself during a cross-partition commit; every transfer then moves between accounts of different
 * partitions, one at a time, so the transfer in flight at the kill is the one the fail-point hit.
 */
import { type OpenOptions, open } from '../../src/index.js';
import { createPartitionRouter } from '../../src/main/partition-router.js';
import { accountKey, planTransfer, type TransferPlan } from '../support/bank.js';
import { runTransfers } from '../support/bank-driver.js';
import { mulberry32 } from '../support/seeded-random.js';
import { type BankFailpoint, bankPartitions, failpointNames } from './bank-protocol.js';
import { fail, report } from './report-pipe.js';

/** A child whose parent vanished must not write forever. */
const lifetimeMaxMs = 10 * 60 * 1000;
const transfersMax = 10_000_000;

function integerArg(text: string | undefined, name: string, min: number): number {
  const value = Number(text);
  if (text === undefined || !Number.isSafeInteger(value) || value < min) fail(`bad ${name} ${String(text)}`);
  return value;
}

async function main(): Promise<void> {
  const [dir, seedText, genText, workersText, concurrencyText, failpointText, afterText] =
    process.argv.slice(2);
  if (dir === undefined)
    fail('usage: bank-child.ts <dir> <seed> <gen> <workers> <concurrency> [failpoint N]');
  const seed = integerArg(seedText, 'seed', 0);
  const gen = integerArg(genText, 'gen', 1);
  const workers = integerArg(workersText, 'workers', 1);
  let concurrency = integerArg(concurrencyText, 'concurrency', 1);
  let failpoints: OpenOptions['failpoints'];
  const router = await createPartitionRouter(bankPartitions);
  const partitionOf = (account: number): number => router.partitionOf(Buffer.from(accountKey(account)));
  let plan = planTransfer;
  if (failpointText !== undefined) {
    if (!failpointNames.includes(failpointText as BankFailpoint)) fail(`bad failpoint ${failpointText}`);
    const after = integerArg(afterText, 'failpoint count', 0);
    // Typed loosely on purpose: the fail-point names are testing-only options.
    failpoints = { [failpointText]: `crash-after:${after}` } as OpenOptions['failpoints'];
    concurrency = 1;
    plan = (random: () => number): TransferPlan => {
      for (;;) {
        const candidate = planTransfer(random);
        if (partitionOf(candidate.from) !== partitionOf(candidate.to)) return candidate;
      }
    };
  }
  setTimeout(() => process.exit(4), lifetimeMaxMs).unref();

  report('O\n');
  const db = await open(dir, {
    partitions: bankPartitions,
    workers,
    durability: 'sync',
    ...(failpoints === undefined ? {} : { failpoints }),
  });
  report('R\n');
  await runTransfers({
    db,
    thread: `g${gen}`,
    transfers: transfersMax,
    concurrency,
    random: mulberry32(seed),
    plan,
    beforeIssue: (n, p) => report(`I ${n} ${p.from} ${p.to} ${p.amount}\n`),
    onCommitted: (n, outcome) => report(`A ${n} ${outcome.moved}\n`),
    onRejected: (n, outcome) => report(`X ${n} ${String(outcome.error).replace(/\s+/g, ' ')}\n`),
  });
  fail('ran out of transfers before the kill');
}

main().catch((error: unknown) => fail(`bank child: ${error instanceof Error ? error.stack : String(error)}`));

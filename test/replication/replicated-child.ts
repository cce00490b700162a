/**
 * A replicated database in a process of its own, for the failover tests (the parent SIGKILLs,
 * SIGSTOPs and SIGCONTs it: see child-process.ts). Report lines go to file descriptor 3, each
 * written synchronously before the next step, so a kill cannot lose one that was made.
 *
 *   node --import tsx test/replication/replicated-child.ts <lead|follow> <dir> <servers> <stream> \
 *     <name> <leaseTtlMs> [fileLayer]
 *
 * lead:   opens the leader and puts c<n> = v<n>, four at a time, until killed. Reports "R" once open,
 *         "A <n> <position>" for each put acknowledged (with the leader's position after it),
 *         "E <n> <code>" for each rejected, and "D" once its role became 'deposed'.
 * follow: opens a follower and reports "R", then "P <position>" each time its applied position moved.
 * A failure to open is "F <message>"; the parent fails the test with it.
 */
import { type Database, isLightningError, open, openReplica } from '../../src/index.js';
import { fail, report } from '../crash/report-pipe.js';

const [mode, dir, serversText, stream, name, leaseTtlText, fileLayer] = process.argv.slice(2);
if ((mode !== 'lead' && mode !== 'follow') || !dir || !serversText || !stream || !name || !leaseTtlText)
  fail('usage: replicated-child.ts <lead|follow> <dir> <servers> <stream> <name> <leaseTtlMs> [fileLayer]');
/** A child whose parent vanished must not run forever. */
const lifetimeMaxMs = 5 * 60 * 1000;
setTimeout(() => fail('still running after its lifetime: the parent is gone'), lifetimeMaxMs).unref();

const options = {
  partitions: 8,
  workers: 2,
  replication: { servers: serversText.split(','), stream, name, leaseTtlMs: Number(leaseTtlText) },
  ...(fileLayer ? { fileLayer } : {}),
};
let db: Database;
try {
  db = mode === 'lead' ? await open(dir, options) : await openReplica(dir, options);
} catch (error) {
  fail(`open as ${mode}: ${error instanceof Error ? error.message : String(error)}`);
}
report('R\n');
const replication = db.replication!;

if (mode === 'lead') {
  let next = 0;
  let deposedReported = false;
  const noteDeposed = (): void => {
    if (deposedReported || replication.role !== 'deposed') return;
    deposedReported = true;
    report('D\n');
  };
  const lane = async (): Promise<void> => {
    for (;;) {
      const n = next++;
      try {
        await db.put(`c${n}`, `v${n}`);
        report(`A ${n} ${replication.position()}\n`);
      } catch (error) {
        report(`E ${n} ${isLightningError(error) ? error.code : String(error).replace(/\s+/g, ' ')}\n`);
        noteDeposed();
        // A deposed leader refuses at once: do not spin.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      noteDeposed();
    }
  };
  for (let i = 0; i < 4; i++) void lane();
  setInterval(noteDeposed, 20);
} else {
  let reported = -1;
  setInterval(() => {
    const position = replication.position();
    if (position !== reported) {
      reported = position;
      report(`P ${position}\n`);
    }
  }, 10);
}

/**
 * Every owner reads every earlier run's log at its start, and owners start at the same time: an
 * owner that recovered first must not remove an earlier run's segment before every owner has read
 * it, even when every partition in it checkpointed past it. Its checkpoints meanwhile remove only
 * this run's segments; the earlier ones go at the first removal after the opener released them.
 *
 * Reproduce a failure with LIGHTNING_SEED=<seed printed in the test name>.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PartitionLog,
  readWal,
  recordTypeOperation,
  SegmentRemoval,
  WalWriter,
} from '../src/storage/wal/index.js';
import { mulberry32, randomBytes, seedFromEnv } from './support/seeded-random.js';
import { segmentNames, useTemporaryDirectories } from './support/wal-fixtures.js';

const seed = seedFromEnv(0x6a7e);
const temporaryDirectory = useTemporaryDirectories('lightning-removal-gate-');

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('segment removal before every owner read the earlier logs', () => {
  it(`defers the earlier runs' segments, not this run's, until released (seed ${seed})`, async () => {
    const random = mulberry32(seed);
    const dir = await temporaryDirectory();
    const runOne = await WalWriter.open(dir, { epoch: 1, worker: 1 }, { segmentTargetBytes: 4096 });
    const earlierLog = new PartitionLog(runOne, 1, 1);
    for (let i = 0; i < 40; i++) {
      earlierLog.append(recordTypeOperation, [randomBytes(random, 100 + (random() % 200))]);
      await runOne.flush(false);
    }
    await runOne.close();
    const earlierPaths = (await segmentNames(dir)).map((name) => join(dir, name));
    expect(earlierPaths.length).toBeGreaterThanOrEqual(2);

    const earlier = await readWal(dir, { beforeEpoch: 2, partitions: new Map(), onRecord: () => {} });
    const runTwo = await WalWriter.open(dir, { epoch: 2, worker: 1 }, { segmentTargetBytes: 4096 });
    const log = new PartitionLog(runTwo, 1, earlierLog.nextLsn);
    for (let i = 0; i < 40; i++) {
      log.append(recordTypeOperation, [randomBytes(random, 300)]);
      await runTwo.flush(false);
    }
    const closed = runTwo.closedSegments.map((segment) => segment.path);
    expect(closed.length).toBeGreaterThanOrEqual(1);
    const removal = new SegmentRemoval(earlier.contents, runTwo, false);
    // Checkpointed past everything: only this run's closed segments go while the gate is shut.
    const pastAll = async () => log.nextLsn;
    expect(await removal.removeObsolete(pastAll)).toBe(closed.length);
    for (const path of earlierPaths) expect(await exists(path)).toBe(true);
    // Released: the next removal takes the earlier ones (deferred, not skipped).
    removal.releaseEarlier();
    expect(await removal.removeObsolete(pastAll)).toBe(earlierPaths.length);
    for (const path of earlierPaths) expect(await exists(path)).toBe(false);
    expect(removal.candidates).toBe(0);
    await runTwo.close();
  });
});

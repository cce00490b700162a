/**
 * A partition whose tree lives in a page file behind a 48-frame buffer pool, with the real write-ahead
 * log (test/fixtures/paged-partition-cycles.ts): every operation is logged and fdatasynced, applied,
 * then acknowledged; page sets are written every 150 operations as checkpoints (recorded in the
 * manifest, the log segments below them removed) and whenever the pool is full, each at the log
 * position it reflects (its redo LSN). A child runs it over real files until SIGKILL, at a
 * seeded point (every other round: just after a set written for room, before the next periodic one);
 * then the partition opens as its owner would, with 24 frames (torn pages repaired, the tree opened from
 * the page file, the log replayed from the redo LSN, sets written as the smaller pool fills) and must hold every acknowledged
 * operation and nothing but them, with at most the one operation in flight besides, pass checkTree,
 * and have every page in its file sound. It is opened a second time, which must find the same tree
 * (the sets the first open wrote while replaying are sound too). The next round's child opens what
 * the last one and the checks left.
 *
 *   LIGHTNING_SEED=<n>                    replay the seeded choices (printed at the start)
 *   LIGHTNING_PAGED_KILLS=<n>             SIGKILL rounds (default 6)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkTree } from '../src/shared-memory/tree/check-tree.js';
import { partitionDirectory } from '../src/storage/layout.js';
import { pageFileProblems } from '../src/storage/page-file/page-file-writer.js';
import { runUntilKilled } from './crash/kill-harness.js';
import { positiveFromEnv } from './crash/kill-lanes.js';
import {
  createPagedDatabase,
  openPagedPartition,
  PagedModel,
  pagedCheckFramesMax,
  pagedPageSize,
  treeDigest,
} from './fixtures/paged-partition-cycles.js';
import { mulberry32, seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0x9a6e_d001);
console.log(`paged-partition-crash: seed ${seed} (LIGHTNING_SEED to replay)`);
const kills = positiveFromEnv('LIGHTNING_PAGED_KILLS', 6);
const childScript = fileURLToPath(new URL('./crash/paged-partition-crash-child.ts', import.meta.url));

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lightning-paged-crash-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a partition over a page file under SIGKILL', () => {
  it('keeps every acknowledged write, whole, after each kill', async () => {
    const random = mulberry32(seed);
    await createPagedDatabase(dir);
    const model = new PagedModel();
    let pageSets = 0;
    let roomSets = 0;
    let setsWhileReplaying = 0;
    let segmentsRemoved = 0;
    let replayed = 0;
    for (let round = 0; round < kills; round++) {
      const epoch = round + 1;
      const roundSeed = (seed + round) >>> 0;
      let acknowledged = -1;
      const killAfter = 60 + (random() % 540);
      const killDelayMs = random() % 4;
      const afterRoomSet = round % 2 === 1;
      let killArmed = false;
      await runUntilKilled({
        script: childScript,
        args: [dir, String(roundSeed), String(epoch)],
        reachKillPointMs: 120_000,
        planText: `after ${killAfter} acknowledged operations${afterRoomSet ? ' and a set for room' : ''}, and ${killDelayMs} ms`,
        onLine: (line, control) => {
          if (line.startsWith('P ')) {
            pageSets++;
            segmentsRemoved += Number(line.split(' ')[2]);
          }
          if (line.startsWith('R ')) {
            roomSets++;
            if (killArmed) control.killAfter(killDelayMs);
          }
          if (!line.startsWith('A ')) return;
          acknowledged = Number(line.slice(2));
          if (acknowledged + 1 < killAfter) return;
          if (afterRoomSet) killArmed = true;
          else control.killAfter(killDelayMs);
        },
        judgeExit: (_code, signal, killedAtMs) =>
          signal === 'SIGKILL' && killedAtMs !== null
            ? null
            : `the child ended by ${String(signal)}, not the kill`,
      });
      for (let index = 0; index <= acknowledged; index++) model.apply(roundSeed, index);
      const withAcknowledged = model.digest();
      let first = '';
      for (const pass of ['first open', 'second open']) {
        const opened = await openPagedPartition(dir, epoch + 1, pagedCheckFramesMax);
        try {
          replayed += opened.replayedRecords;
          setsWhileReplaying += opened.setsWhileReplaying;
          checkTree(opened.paged.tree);
          const digest = treeDigest(opened.paged.tree);
          const context = `round ${round}, ${pass}: ${acknowledged + 1} operations acknowledged, seed ${seed}`;
          if (pass === 'second open') {
            expect(digest, context).toBe(first);
          } else if (digest !== withAcknowledged) {
            // The operation in flight at the kill may have reached the log: then it must be whole.
            model.apply(roundSeed, acknowledged + 1);
            expect(digest, context).toBe(model.digest());
          }
          first = digest;
        } finally {
          opened.paged.close();
        }
      }
      expect(await pageFileProblems(partitionDirectory(dir, 0), pagedPageSize)).toEqual([]);
    }
    console.log(
      `paged-partition-crash: ${kills} kills, ${pageSets} checkpoints every 150 operations ` +
        `(${segmentsRemoved} log segments removed), ` +
        `${roomSets} for room in a full pool, ${replayed} records replayed, ` +
        `${setsWhileReplaying} sets written while replaying`,
    );
    // Counts that depend on where the kills fell are logged, and asserted only where no seed can miss.
    expect(pageSets).toBeGreaterThan(0);
    // The pool fills between the periodic sets: a set is written in the middle of a write's retry.
    expect(roomSets).toBeGreaterThan(0);
    // Every check replays the log from the last set: the redo LSN must have been exercised.
    expect(replayed).toBeGreaterThan(0);
    // Checkpoints advance the log's start: the replays above ran without the segments below it.
    expect(segmentsRemoved).toBeGreaterThan(0);
  }, 300_000);
});

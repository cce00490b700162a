/**
 * The owner's stall report (LIGHTNING_OWNER_STALL_REPORT_MS): while a write waits on an owner whose
 * pass does not end, the owner prints what its loop is doing and what waits; once the write
 * completes, an idle owner reports nothing. The pass is held with the 'owner.before-sync' fail-point (a disk that takes
 * seconds to sync), forty times the report's period, so the report has every chance to run; the test
 * counts lines, it does not time them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';

const reportEveryMs = 100;
const syncDelayMs = 4000;
const dirs: string[] = [];
const restores: (() => void)[] = [];

afterEach(() => {
  for (const restore of restores.splice(0)) restore();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Collects the lines written to the process's stderr (where worker threads' console.warn lands). */
function captureStderr(): string[] {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    lines.push(...text.split('\n').filter((line) => line.length > 0));
    // The reports are counted here, not echoed: dozens of them would bury the run's output.
    if (text.includes('lightning-db owner: no write completed')) return true;
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  restores.push(() => {
    process.stderr.write = write;
  });
  return lines;
}

describe('the owner stall report', () => {
  it('says what the loop does while a write waits on a pass that does not end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lightning-stall-'));
    dirs.push(dir);
    const previous = process.env.LIGHTNING_OWNER_STALL_REPORT_MS;
    process.env.LIGHTNING_OWNER_STALL_REPORT_MS = String(reportEveryMs);
    restores.push(() => {
      if (previous === undefined) delete process.env.LIGHTNING_OWNER_STALL_REPORT_MS;
      else process.env.LIGHTNING_OWNER_STALL_REPORT_MS = previous;
    });
    const lines = captureStderr();
    const db = await open(dir, {
      partitions: 1,
      workers: 1,
      failpoints: { 'owner.before-sync': `delay:${syncDelayMs}` },
    });
    try {
      await db.put('k', 'v');
      const reports = lines.filter((line) => line.includes('lightning-db owner: no write completed for'));
      console.log(`owner-stall-report: ${reports.length} reports during one held pass; first: ${reports[0]}`);
      expect(reports.length).toBeGreaterThan(0);
      expect(reports[0]).toContain('loop: in a pass');
      expect(reports[0]).toContain('page sets: none');
      // Idle (nothing in the rings, nothing deferred): five periods pass without a report.
      const idleFrom = lines.length;
      await new Promise((resolve) => setTimeout(resolve, 5 * reportEveryMs));
      expect(lines.slice(idleFrom).filter((line) => line.includes('no write completed'))).toEqual([]);
    } finally {
      await db.close();
    }
  }, 60_000);
});

/**
 * After an I/O error the WAL writer stops for good: the file's state is unknown (a write may be partly
 * on disk, a failed fsync may have dropped dirty pages), so it never retries. The failing flush
 * rejects with the system error, every later call with ERR_CLOSED carrying it, and close() only
 * releases the file. The failure is injected by removing the log directory under an open writer,
 * so that its next rotation cannot create a segment (chmod would not stop root).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLightningError } from '../src/shared-memory/index.js';
import { PartitionLog, recordTypeOperation, WalWriter } from '../src/storage/wal/index.js';

describe('WAL writer after an I/O failure', () => {
  it('rejects the failing flush with the cause, then everything with ERR_CLOSED', async () => {
    const base = await mkdtemp(join(tmpdir(), 'lightning-wal-failure-'));
    try {
      const dir = join(base, 'wal');
      const writer = await WalWriter.open(dir, { epoch: 1, worker: 0 }, { segmentTargetBytes: 4096 });
      const log = new PartitionLog(writer, 0, 1);
      log.append(recordTypeOperation, [Buffer.alloc(5000)]);
      await rm(dir, { recursive: true });
      const failed = writer.flush(true);
      const queued = writer.flush(false); // Chained behind the failing one: it must not write.
      await expect(failed).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(queued).rejects.toSatisfy((error) => isLightningError(error, 'ERR_CLOSED'));
      let caught: unknown;
      try {
        log.append(recordTypeOperation, [Buffer.alloc(1)]);
      } catch (error) {
        caught = error;
      }
      expect(isLightningError(caught, 'ERR_CLOSED')).toBe(true);
      expect((caught as Error).cause).toMatchObject({ code: 'ENOENT' });
      await expect(writer.flush(true)).rejects.toSatisfy((error) => isLightningError(error, 'ERR_CLOSED'));
      expect(writer.stats.flushes).toBe(1); // The write itself went to the open file before rotation failed.
      await writer.close();
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});

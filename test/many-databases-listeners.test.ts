import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { type Database, open } from '../src/index.js';

/**
 * Many databases open in one process (a test suite, a service with one database per tenant) share
 * one 'worker' and one 'exit' listener for thread liveness: a listener per database would give every
 * worker started one 'exit' listener per database, and Node would warn of a leak past ten.
 */
const base = mkdtempSync(join(tmpdir(), 'lightning-many-databases-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('many databases in one process', () => {
  it('add no listener per database to the process or to the workers it starts', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(`${warning.name}: ${warning.message}`);
    };
    process.on('warning', onWarning);
    const exitListenersBefore = process.listenerCount('exit');
    const databases: Database[] = [];
    try {
      for (let i = 0; i < 14; i++)
        databases.push(await open(join(base, `db-${i}`), { partitions: 1, workers: 1 }));
      expect(process.listenerCount('worker')).toBe(1);
      expect(process.listenerCount('exit') - exitListenersBefore).toBeLessThanOrEqual(1);
      const worker = new Worker('setTimeout(() => {}, 10)', { eval: true });
      expect(worker.listenerCount('exit')).toBeLessThanOrEqual(1);
      await new Promise((resolve) => worker.once('exit', resolve));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      for (const db of databases) await db.close();
      process.off('warning', onWarning);
    }
    expect(warnings.filter((warning) => warning.includes('MaxListenersExceeded'))).toEqual([]);
    expect(process.listenerCount('worker')).toBe(0);
  });
});

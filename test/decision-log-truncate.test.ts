/**
 * A thread's decision log is emptied once every decision in it was logged by its participants. A
 * commit of the same thread may append its own decision while the log is being emptied: that record
 * must survive the cut, or presumed abort would undo a transaction its caller was told committed.
 * The cut is held open through the file layer (its truncate waits for the test), the append is made
 * meanwhile, and the file is read back: it must name the appended transaction, and the append's
 * promise must not resolve before the cut ends. A failed cut leaves the log usable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DecisionLog, readCommittedTransactions } from '../src/storage/decision-log.js';
import {
  type FileLayer,
  installFileLayer,
  type LayerFileHandle,
  nodeFileLayer,
} from '../src/storage/file-layer.js';

const dirs: string[] = [];

afterEach(() => {
  installFileLayer(nodeFileLayer);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** node's layer, whose handles' truncate first waits for `hold` (or fails with `failWith`). */
function holdingTruncate(control: { hold: Promise<void> | null; failWith: Error | null }): FileLayer {
  return {
    ...nodeFileLayer,
    async open(path, flags) {
      const handle = await nodeFileLayer.open(path, flags);
      const wrapped: LayerFileHandle = {
        write: (...args) => handle.write(...args),
        writev: (...args) => handle.writev(...args),
        writeFile: (data) => handle.writeFile(data),
        read: (...args) => handle.read(...args),
        readFile: () => handle.readFile(),
        stat: () => handle.stat(),
        async truncate(length) {
          if (control.hold !== null) await control.hold;
          if (control.failWith !== null) throw control.failWith;
          return handle.truncate(length);
        },
        datasync: () => handle.datasync(),
        sync: () => handle.sync(),
        close: () => handle.close(),
      };
      return wrapped;
    },
  };
}

function newDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lightning-decisions-'));
  dirs.push(dir);
  return dir;
}

describe('emptying a decision log', () => {
  it('keeps a decision appended while the log is being emptied', async () => {
    const dir = newDirectory();
    let release!: () => void;
    const control = {
      hold: new Promise<void>((resolve) => {
        release = resolve;
      }) as Promise<void> | null,
      failWith: null,
    };
    installFileLayer(holdingTruncate(control));
    const log = new DecisionLog(dir, 3);
    await log.append(101);
    await log.append(102);
    expect(await readCommittedTransactions(dir)).toEqual(new Set([101, 102]));

    const cut = log.truncate();
    let appended = false;
    const append = log.append(103).then(() => {
      appended = true;
    });
    // Turns of the event loop pass while the cut is held: the append waits for it.
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(appended, 'the append resolved while the cut was still held').toBe(false);
    release();
    await cut;
    await append;
    expect(await readCommittedTransactions(dir)).toEqual(new Set([103]));
    expect(log.bytes).toBe(24);
    await log.close();
  });

  it('goes on appending after a cut that failed, at the end of what the file holds', async () => {
    const dir = newDirectory();
    const control = { hold: null, failWith: new Error('EIO: the cut failed') as Error | null };
    installFileLayer(holdingTruncate(control));
    const log = new DecisionLog(dir, 4);
    await log.append(201);
    await expect(log.truncate()).rejects.toThrow('the cut failed');
    control.failWith = null;
    await log.append(202);
    expect(await readCommittedTransactions(dir)).toEqual(new Set([201, 202]));
    expect(log.bytes).toBe(48);
    await log.close();
  });
});

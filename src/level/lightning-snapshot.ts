import { AbstractSnapshot } from 'abstract-level';
import type { Snapshot } from '../index.js';

/** abstract-level's snapshot constructor takes `{ owner }`; its type declarations leave it out. */
const SnapshotBase = AbstractSnapshot as unknown as new (options: { owner: object }) => AbstractSnapshot;

/**
 * An explicit Level snapshot: a lightning-db snapshot (one read timestamp across every partition),
 * released when the Level snapshot closes, which its database does for it on close().
 */
export class LightningSnapshot extends SnapshotBase {
  readonly snapshot: Snapshot;

  constructor(options: { owner: object }, snapshot: Snapshot) {
    super(options);
    this.snapshot = snapshot;
  }

  async _close(): Promise<void> {
    this.snapshot.release();
  }
}

/** The lightning-db snapshot behind a Level snapshot option, or null for none. */
export function snapshotOf(option: unknown): Snapshot | null {
  return option instanceof LightningSnapshot ? option.snapshot : null;
}

/**
 * A file layer that holds one owner's recovery read of one log segment until another owner had the
 * chance to remove it: the owner of the partition directory named by LIGHTNING_HOLD_OWNER (`0000`)
 * waits before it opens the segment named by LIGHTNING_HOLD_SEGMENT until some thread unlinked that
 * segment, or until another partition's manifest names its page file (a converted partition's first
 * set is recorded; its segment removal follows at once) and a moment more has passed. Threads tell
 * each other over a BroadcastChannel. Loaded in every thread through the testing-only `fileLayer`
 * open option.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, sep } from 'node:path';
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import { type FileLayer, type LayerOpenFlags, nodeFileLayer } from '../../src/storage/file-layer.js';

export const holdOwnerEnvName = 'LIGHTNING_HOLD_OWNER';
export const holdSegmentEnvName = 'LIGHTNING_HOLD_SEGMENT';

/** After another partition's set is recorded: time for its owner's removal, which follows at once. */
const graceMs = 500;

type Event = { unlinked: string } | { pagesRecordedIn: string };

const channel = new BroadcastChannel('lightning-db-held-read-layer');
channel.unref();

/** The partition directory this thread touched first: an owner touches its own before any other. */
let ownPartition: string | null = null;
let held = false;

function notice(path: string): void {
  if (ownPartition !== null) return;
  const match = new RegExp(`partitions\\${sep}(\\d{4})`).exec(path);
  if (match !== null) ownPartition = match[1]!;
}

function post(event: Event): void {
  channel.postMessage(event);
}

/** What other threads did, kept from this thread's start: the hold may begin after either. */
const unlinked = new Set<string>();
let otherPagesRecorded = false;
let onEvent = (): void => {};
channel.onmessage = (message: unknown) => {
  const event = (message as { data: Event }).data;
  if ('unlinked' in event) unlinked.add(basename(event.unlinked));
  else if (event.pagesRecordedIn !== ownPartition) otherPagesRecorded = true;
  onEvent();
};

/** Resolves once the held segment is gone, or another partition's set was recorded a while ago. */
function release(segment: string): Promise<void> {
  return new Promise((resolve) => {
    channel.ref();
    let graceStarted = false;
    onEvent = () => {
      if (unlinked.has(segment)) {
        onEvent = () => {};
        channel.unref();
        resolve();
      } else if (otherPagesRecorded && !graceStarted) {
        graceStarted = true;
        setTimeout(() => {
          onEvent = () => {};
          channel.unref();
          resolve();
        }, graceMs);
      }
    };
    onEvent();
  });
}

const heldReadLayer: FileLayer = {
  ...nodeFileLayer,
  async open(path: string, flags: LayerOpenFlags) {
    notice(path);
    const segment = process.env[holdSegmentEnvName];
    if (
      !isMainThread &&
      !held &&
      flags === 'r' &&
      basename(path) === segment &&
      ownPartition === process.env[holdOwnerEnvName]
    ) {
      held = true;
      await release(segment);
    }
    return nodeFileLayer.open(path, flags);
  },
  async readFile(path: string, encoding: 'utf8') {
    notice(path);
    return nodeFileLayer.readFile(path, encoding);
  },
  async unlink(path: string) {
    await nodeFileLayer.unlink(path);
    post({ unlinked: path });
  },
  async rename(from: string, to: string) {
    notice(to);
    await nodeFileLayer.rename(from, to);
    if (basename(to) === 'MANIFEST.json' && readFileSync(to, 'utf8').includes('"pages.lpg"'))
      post({ pagesRecordedIn: basename(dirname(to)) });
  },
};

export function createFileLayer(): FileLayer {
  return heldReadLayer;
}

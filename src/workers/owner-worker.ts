/**
 * Entry point of a partition-owner worker thread. The owner allocates its partitions' memory (so on
 * NUMA machines the pages land on its node), then serves writes from its command rings until told to
 * shut down. Only this thread ever writes its partitions' trees.
 */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import {
  attachControlBlock,
  BTree,
  CommandRing,
  kWorkerFieldCount,
  kWorkerState,
  type TreeHandle,
  workerStateRunning,
  workerStateStopped,
} from '../shared-memory/index.js';
import { Failpoints } from './failpoints.js';
import { OwnerLoop } from './owner-loop.js';
import type { OwnerApi, OwnerConfig } from './owner-protocol.js';

let loop: OwnerLoop | null = null;
let control: Int32Array | null = null;

const api: OwnerApi = {
  start(config: OwnerConfig): TreeHandle[] {
    if (loop !== null) throw new Error('owner worker started twice');
    control = attachControlBlock(config.control, kWorkerFieldCount);
    const trees = new Map<number, BTree>();
    const handles: TreeHandle[] = [];
    for (const partition of config.partitions) {
      const tree = BTree.create({ pageSizeBytes: config.pageSizeBytes, maxBytes: config.partitionBytesMax });
      trees.set(partition, tree);
      handles.push(tree.share());
    }
    const rings = config.rings.map((sab) => CommandRing.attach(sab));
    loop = new OwnerLoop(trees, rings, control, new Failpoints(config.failpoints));
    loop.start();
    Atomics.store(control, kWorkerState, workerStateRunning);
    return handles;
  },

  async shutdown(): Promise<void> {
    if (loop === null || control === null) return;
    await loop.stop();
    Atomics.store(control, kWorkerState, workerStateStopped);
  },
};

if (parentPort === null) throw new Error('owner-worker must run in a worker thread');
Comlink.expose(api, nodeEndpoint(parentPort));

import type { TreeHandle } from '../shared-memory/index.js';
import type { FailpointSpec } from './failpoints.js';

/** What the coordinator sends an owner worker at start-up (structured-cloned; SABs are shared). */
export interface OwnerConfig {
  workerIndex: number;
  /** Partition ids this worker owns. */
  partitions: number[];
  pageSizeBytes: number;
  partitionBytesMax: number;
  /** This worker's command rings, one per thread slot. */
  rings: SharedArrayBuffer[];
  /** This worker's control block. */
  control: SharedArrayBuffer;
  failpoints: FailpointSpec | undefined;
}

/** The control plane of an owner worker (comlink). The data plane never uses it. */
export interface OwnerApi {
  /** Creates (and first-touches) the worker's partitions and starts its loop; returns their tree handles. */
  start(config: OwnerConfig): TreeHandle[];
  /** Applies everything already appended, stops the loop, and resolves when done. */
  shutdown(): Promise<void>;
}

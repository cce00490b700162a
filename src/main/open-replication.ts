import type { MessagePort } from 'node:worker_threads';
import type { ResolvedReplication } from '../replication/replication-options.js';
import { ReplicationRole } from '../replication/replication-role.js';
import type { CommandRing } from '../shared-memory/index.js';
import type { BatchEntry } from '../shared-memory/ring/operation-codec.js';
import { walDirectory } from '../storage/layout.js';
import type { Database } from './database.js';
import type { KeepAlive } from './keep-alive.js';
import { claimThreadSlot, releaseThreadSlot } from './thread-slots.js';
import type { WorkerPool } from './worker-pool.js';
import { WriteChannel } from './write-channel.js';

/** What open() hands the replication of a database it opened. */
export interface ReplicationWiring {
  directory: string;
  options: ResolvedReplication;
  /** Lead (open()) or follow (openReplica()). */
  lead: boolean;
  db: Database;
  pool: WorkerPool;
  databaseControl: Int32Array;
  threadsMax: number;
  rings: CommandRing[][];
  controls: Int32Array[];
  keepAlive: KeepAlive;
  partitionWorkers: readonly number[];
  userChannels: readonly WriteChannel[];
}

/** The started replication and what closing the database must do before and after its owners stop. */
export interface StartedReplication {
  role: ReplicationRole;
  beforeOwnersStop(): Promise<void>;
  afterOwnersStop(): Promise<void>;
}

/**
 * Starts a database's replication: the follower's writes go through a thread slot of their own (its
 * rings are never refused, unlike the users' while the database follows), and the role drives the
 * owners' shipping through the worker pool.
 */
export async function startReplication(wiring: ReplicationWiring): Promise<StartedReplication> {
  const { db, pool, databaseControl, threadsMax, rings, controls, keepAlive, partitionWorkers } = wiring;
  const claim = claimThreadSlot(databaseControl, threadsMax);
  const channels = controls.map(
    (control, worker) =>
      new WriteChannel(rings[worker]![claim.slot]!, control, keepAlive, walDirectory(wiring.directory)),
  );
  const applyChannels = async (): Promise<void> => {
    await Promise.all(channels.map((channel) => channel.drained()));
  };
  let role: ReplicationRole;
  try {
    role = await ReplicationRole.start(
      {
        partitions: partitionWorkers.length,
        workers: controls.length,
        partitionOf: (key) => db.partitionOf(key),
        readKey: (key) => db.readKey(key, null),
        apply: (partition: number, entries: BatchEntry[]) =>
          channels[partitionWorkers[partition]!]!.batch(partition, entries),
        replicate: (ports: MessagePort[] | null, recordBytesMax?: number) =>
          pool.replicate(ports, recordBytesMax),
        userChannels: wiring.userChannels,
      },
      wiring.options,
      wiring.lead,
    );
  } catch (error) {
    await applyChannels();
    releaseThreadSlot(databaseControl, claim);
    throw error;
  }
  return {
    role,
    beforeOwnersStop: async () => {
      await role.stopApplying();
      await applyChannels();
    },
    afterOwnersStop: async () => {
      await role.close();
      releaseThreadSlot(databaseControl, claim);
    },
  };
}

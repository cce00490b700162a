/**
 * What users of a replicated database see of its replication: `db.replication` and
 * `stats().replication` (implemented by replication-role.ts).
 */

/** 'deposed': a leader that lost its leadership; it serves reads only until reopened. */
export type ReplicationRoleName = 'leader' | 'follower' | 'deposed';

/** stats().replication */
export interface ReplicationStats {
  role: ReplicationRoleName;
  stream: string;
  name: string;
  /** The leader's lease term (its KV revision); 0 on a follower. */
  term: number;
  /** Leader: the stream sequence of the last message published. Follower: of the last applied. */
  position: number;
  /** Follower: messages in the stream not yet delivered here, as of the last delivery. */
  lagMessages: number;
  /** Follower: ms from the stream storing a message to it being visible here, over recent messages. */
  lagMsP50: number;
  lagMsP99: number;
  /** Follower: envelopes applied since it started following. */
  envelopesApplied: number;
  /** Leader: messages published, owner batches carried, publish retries. */
  messagesPublished: number;
  batchesPublished: number;
  publishRetries: number;
  /**
   * Leader: the stream sequence its partitions' durable positions name (written every second while
   * it publishes): a backup of it taken now resumes the log after that. 0 before the first, and on
   * a follower.
   */
  checkpointedPosition: number;
  /** The log's messages below this stream sequence were trimmed by this database while it led (0: none). */
  trimmedBelow: number;
  /** Why applying stopped (a follower that cannot go on), or null. */
  failure: string | null;
}

/** `db.replication`: what users of a replicated database see of its replication. */
export interface Replication {
  /**
   * 'leader' (takes writes), 'follower' (applies the log; writes reject ERR_NOT_LEADER) or 'deposed'
   * (stopped leading; writes reject ERR_DEPOSED until it is reopened).
   */
  readonly role: ReplicationRoleName;
  /** This database's stream position; on the leader, after a write resolved, at or past it. */
  position(): number;
  /** Resolves once this database applied the log up to `position` (a session read); see ReplicationRole. */
  waitForPosition(position: number, timeoutMs?: number): Promise<void>;
  /** Makes a follower the leader (waiting for the lease unless `wait: false`). */
  promote(options?: { wait?: boolean; signal?: AbortSignal }): Promise<void>;
  stats(): ReplicationStats;
}

import type { MessagePort } from 'node:worker_threads';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { WriteChannel } from '../main/write-channel.js';
import { LightningError } from '../shared-memory/errors.js';
import { type BatchEntry, operationPut } from '../shared-memory/ring/operation-codec.js';
import { LeaderCheckpoints } from './leader-checkpoints.js';
import { LeaderLease } from './leader-lease.js';
import { LeaderPositions } from './leader-positions.js';
import { LeaderShipping } from './leader-shipping.js';
import { type LeaseBucket, openLeaseBucket } from './lease-bucket.js';
import { waitForLeaderLease } from './lease-takeover.js';
import { envelopeHeaderBytes, envelopePayloadBytesMax } from './log-envelope.js';
import { LogPublisher, readLastSequence } from './log-publisher.js';
import { ensureLogStream, type LogStream } from './log-stream.js';
import { replicationError } from './nats-errors.js';
import { ReplicaApplier } from './replica-applier.js';
import {
  decodePosition,
  emptyPosition,
  encodePosition,
  positionKeys,
  type ReplicaPosition,
} from './replica-position.js';
import { leaseBucketName, type ResolvedReplication } from './replication-options.js';
import type { Replication, ReplicationRoleName, ReplicationStats } from './replication-types.js';
import { retryWhileElecting } from './while-electing.js';

/** What the replication role drives in the database it belongs to (built by open.ts). */
export interface ReplicatedDatabase {
  readonly partitions: number;
  readonly workers: number;
  partitionOf(key: Uint8Array): number;
  /** The newest committed value of an internal key, on this thread. */
  readKey(key: Uint8Array): Uint8Array | undefined;
  /** Writes one partition's batch through a thread slot of the replication's own (never refused). */
  apply(partition: number, entries: BatchEntry[]): Promise<void>;
  /**
   * Starts (ports) or stops (null) the owners' shipping of their records; a write whose record is
   * larger than `recordBytesMax` is refused alone by its owner.
   */
  replicate(ports: MessagePort[] | null, recordBytesMax?: number): Promise<void>;
  /** The channels users write through: refused while this database follows. */
  readonly userChannels: readonly WriteChannel[];
}

/** A promoting follower waits this long at most to apply the log to its end. */
const catchUpMsMax = 10 * 60_000;

/**
 * A replicated database's role and the switches between them. Every replicated database starts as a
 * follower (applying the log from the positions its partitions hold: replica-applier.ts); `open()`
 * then promotes it at once, `openReplica()` leaves it following until `promote()`.
 *
 * Promotion: take the lease (its KV revision is the new term), apply the log to the end the stream
 * reports, stop applying, abort what the log left undecided, then have the owners ship every pass's
 * records to the stream before their own log (workers/log-shipper.ts), publishing fenced from that
 * end (leader-shipping.ts). If an old leader published after that end, the first publish is
 * rejected and this database steps down again: it never leads a log it has not applied.
 *
 * Stepping down (the lease lost, a publish rejected or unacknowledged, an owner's log refusing what
 * the stream took) is for good: new user writes are refused ERR_DEPOSED (those already sent settle
 * ERR_DEPOSED or ERR_REPLICATION), reads go on, and the role stays 'deposed' until the database is
 * closed. Reopened, it follows the log from the positions its partitions hold (its last checkpoint:
 * leader-checkpoints.ts): it re-applies what it published since, which is harmless (the records are
 * blind writes, applied in order), and learns what the stream holds that its own log may lack.
 */
export class ReplicationRole implements Replication {
  readonly #db: ReplicatedDatabase;
  readonly #options: ResolvedReplication;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #manager: JetStreamManager;
  readonly #stream: LogStream;
  readonly #bucket: LeaseBucket;
  readonly #positionKeys: Uint8Array[];
  #role: ReplicationRoleName = 'follower';
  #deposedBy: LightningError | null = null;
  #applier: ReplicaApplier | null = null;
  #lease: LeaderLease | null = null;
  #shipping: LeaderShipping | null = null;
  #checkpoints: LeaderCheckpoints | null = null;
  #switching: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    db: ReplicatedDatabase,
    options: ResolvedReplication,
    nc: NatsConnection,
    manager: JetStreamManager,
    stream: LogStream,
    bucket: LeaseBucket,
  ) {
    this.#db = db;
    this.#options = options;
    this.#nc = nc;
    this.#js = jetstream(nc);
    this.#manager = manager;
    this.#stream = stream;
    this.#bucket = bucket;
    this.#positionKeys = positionKeys(db.partitions, (key) => db.partitionOf(key));
  }

  /** Connects, starts following, and, for a leader, promotes (ERR_LOCKED if another leader holds the lease). */
  static async start(
    db: ReplicatedDatabase,
    options: ResolvedReplication,
    lead: boolean,
  ): Promise<ReplicationRole> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: options.servers, name: options.name, maxReconnectAttempts: -1 });
    } catch (error) {
      throw replicationError(`connecting to ${options.servers.join(', ')}`, error);
    }
    try {
      // Each step creates what is missing or checks what is there, so a retry after a partial
      // failure is safe; an open during an election waits for it (bounded) instead of failing.
      const { jsm, stream, bucket } = await retryWhileElecting(
        `opening log ${options.stream} and its lease bucket`,
        async () => {
          const jsm = await jetstreamManager(nc);
          const stream = await ensureLogStream(jsm, {
            name: options.stream,
            replicas: options.replicas,
            partitions: db.partitions,
          });
          const bucket = await openLeaseBucket(jetstream(nc), {
            name: leaseBucketName(options.stream),
            ttlMs: options.leaseTtlMs,
            replicas: options.replicas,
          });
          return { jsm, stream, bucket };
        },
      );
      const role = new ReplicationRole(db, options, nc, jsm, stream, bucket);
      role.#refuseUserWrites();
      role.#follow();
      if (lead) {
        try {
          await role.promote({ wait: false });
        } catch (error) {
          await role.stopApplying();
          await role.close();
          throw error;
        }
      }
      return role;
    } catch (error) {
      await nc.close().catch(() => {});
      throw error;
    }
  }

  get role(): ReplicationRoleName {
    return this.#role;
  }

  /**
   * The stream position of this database's state. On the leader, after a write's promise resolved,
   * at or past that write: hand it to a follower's `waitForPosition` to read your own writes there.
   */
  position(): number {
    if (this.#role === 'leader') return this.#shipping?.streamSequence ?? 0;
    return this.#applier?.appliedSequence ?? 0;
  }

  /**
   * Resolves once this database has applied the log up to `position` (at once on the leader, which
   * acknowledged it); ERR_REPLICATION if that takes longer than `timeoutMs` (default: the
   * sessionTimeoutMs option) or applying has stopped. A follower being promoted answers once the
   * promotion settled; a deposed database rejects ERR_DEPOSED (it neither leads nor applies the log,
   * so it cannot tell), a closed one ERR_CLOSED.
   */
  waitForPosition(position: number, timeoutMs = this.#options.sessionTimeoutMs): Promise<void> {
    if (!Number.isSafeInteger(position) || position < 0) {
      return Promise.reject(
        new LightningError('ERR_BAD_ARGUMENT', `a position is a safe integer >= 0, got ${position}`),
      );
    }
    if (this.#closed) return Promise.reject(new LightningError('ERR_CLOSED', 'the database is closed'));
    if (this.#role === 'leader') return Promise.resolve();
    if (this.#role === 'deposed') {
      return Promise.reject(
        new LightningError(
          'ERR_DEPOSED',
          'this database was deposed and no longer applies the log; reopen it with openReplica() to read at a position',
        ),
      );
    }
    // Promoting: the applier stopped at the log's end; the promotion's outcome decides.
    if (this.#applier === null) return this.#switching.then(() => this.waitForPosition(position, timeoutMs));
    return this.#applier.waitFor(position, timeoutMs);
  }

  /**
   * A cross-partition commit, decided: resolves once `shipped()` says every participant's decision
   * record reached the log. ERR_REPLICATION if this database stops leading first: the log may hold
   * some of those records (then the followers, and a new leader, commit the transaction) or none
   * (then a new leader aborts it).
   */
  async waitUntilShipped(shipped: () => boolean): Promise<void> {
    for (let round = 0; !shipped(); round++) {
      if (this.#role !== 'leader') {
        throw new LightningError(
          'ERR_REPLICATION',
          'the transaction was decided, but this database stopped leading before every participant ' +
            "logged the decision: whether it committed is the new leader's to say",
        );
      }
      // The participants log the decision in their next pass: usually within a turn or two.
      await new Promise((resolve) => (round < 8 ? setImmediate(resolve) : setTimeout(resolve, 1)));
    }
  }

  /**
   * Makes this follower the leader: waits for the lease (`wait`, the default) or takes it now
   * (ERR_LOCKED if held), applies the log to its end and starts publishing. Resolves once writes are
   * accepted. Does nothing on a leader.
   */
  promote(options: { wait?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const run = this.#switching.then(() => this.#promote(options));
    this.#switching = run.catch(() => {});
    return run;
  }

  async #promote(options: { wait?: boolean; signal?: AbortSignal }): Promise<void> {
    if (this.#role === 'leader' || this.#closed) return;
    if (this.#role === 'deposed') {
      throw new LightningError(
        'ERR_DEPOSED',
        `this database was deposed (${this.#deposedBy?.message}); reopen it with openReplica() first`,
      );
    }
    const holder = this.#options.name;
    const lease =
      options.wait === false
        ? await LeaderLease.acquire(this.#bucket, { holder })
        : await waitForLeaderLease(this.#bucket, {
            holder,
            ...(options.signal ? { signal: options.signal } : {}),
          });
    try {
      const end = await readLastSequence(this.#manager, this.#stream);
      const applier = this.#applier!;
      await applier.waitFor(end, catchUpMsMax);
      await applier.stop();
      if (applier.failure !== null) throw applier.failure;
      this.#applier = null;
      const positions = applier.positions;
      // Transactions the log left prepared without a decision were never acknowledged: abort them
      // (the followers drop them when they see this term).
      await Promise.all(
        positions.map((position, partition) => {
          if (position.prepared.size === 0) return undefined;
          position.prepared.clear();
          return this.#db.apply(partition, [this.#positionEntry(partition, position)]);
        }),
      );
      const publisher = await LogPublisher.start(this.#js, this.#manager, this.#stream, {
        term: lease.term,
        lastSequence: end,
      });
      const leaderPositions = new LeaderPositions(positions, lease.term, end);
      const shipping = new LeaderShipping({
        publisher,
        sequences: positions.map((position) => position.sequence),
        messageBytesMax: this.#messageBytesMax(),
        isHeld: () => lease.isHeld(),
        onStop: (reason) => void this.#stepDown(reason),
        onPublished: (streamSequence, envelopes) => leaderPositions.record(streamSequence, envelopes),
        ownerHasWork: (worker) => (this.#db.userChannels[worker]?.pending ?? 0) > 0,
      });
      await this.#db.replicate(
        shipping.ports(this.#db.workers),
        this.#messageBytesMax() - envelopeHeaderBytes,
      );
      this.#lease = lease;
      this.#shipping = shipping;
      lease.onLost((reason) => shipping.stop(reason));
      this.#role = 'leader';
      this.#checkpoints = new LeaderCheckpoints(
        leaderPositions,
        {
          write: (partition, position) =>
            this.#db.apply(partition, [this.#positionEntry(partition, position)]),
          trim: async (streamSequence) =>
            (await this.#manager.streams.purge(this.#stream.name, { seq: streamSequence })).purged,
          isLeading: () => this.#role === 'leader',
        },
        { retainMs: this.#options.retainMs },
      );
    } catch (error) {
      await lease.release();
      if (this.#applier === null && !this.#closed) this.#follow();
      throw error;
    }
  }

  /**
   * The lease is lost, a publish was rejected or not acknowledged, or an owner's log refused what
   * the stream took: this database no longer knows what the log holds. It stops taking writes for
   * good (ERR_DEPOSED), keeps serving reads of what it had, and keeps refusing its owners' records,
   * so that its own log never gets anything the stream lacks. Reopened (with openReplica, or open
   * to lead again), it recovers its log and applies the stream from its positions: its log holds
   * nothing the stream lacks, so there is no tail to take back.
   */
  #stepDown(reason: LightningError): void {
    if (this.#role !== 'leader') return;
    console.warn(`lightning-db replication: ${this.#options.name} steps down: ${reason.message}`);
    this.#role = 'deposed';
    this.#deposedBy = reason;
    const refusal = new LightningError(
      'ERR_DEPOSED',
      `this database no longer leads replication log ${this.#stream.name} (${reason.message}); ` +
        'close it and reopen it with openReplica() to follow the new leader',
      { cause: reason },
    );
    for (const channel of this.#db.userChannels) channel.refuseWhile(refusal, () => true);
    void this.#checkpoints?.stop(false);
    void this.#lease?.release();
  }

  /**
   * Stops applying, or, on a leader, takes a last checkpoint of its positions (so that it reopens
   * where it stopped) and stops checkpointing: before the owners stop, at close.
   */
  async stopApplying(): Promise<void> {
    this.#closed = true;
    await this.#switching;
    await this.#checkpoints?.stop(this.#role === 'leader');
    await this.#applier?.stop();
  }

  /** Releases the lease and the connection (after the owners stopped, at close). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#shipping?.close();
    await this.#lease?.release();
    await this.#nc.close().catch(() => {});
  }

  stats(): ReplicationStats {
    const applier = this.#applier;
    const shipping = this.#shipping;
    const lags = [...(applier?.lagSamples() ?? [])].sort((a, b) => a - b);
    const at = (q: number): number =>
      lags.length === 0 ? 0 : lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!;
    const counts = shipping?.counts ?? { messages: 0, batches: 0, retries: 0 };
    return {
      role: this.#role,
      stream: this.#stream.name,
      name: this.#options.name,
      term: this.#role === 'leader' ? (shipping?.term ?? 0) : 0,
      position: this.position(),
      lagMessages: applier?.pendingMessages ?? 0,
      lagMsP50: at(0.5),
      lagMsP99: at(0.99),
      envelopesApplied: applier?.envelopesApplied ?? 0,
      messagesPublished: counts.messages,
      batchesPublished: counts.batches,
      publishRetries: counts.retries,
      checkpointedPosition: this.#role === 'leader' ? (this.#checkpoints?.checkpointed ?? 0) : 0,
      trimmedBelow: this.#checkpoints?.trimmedBelow ?? 0,
      failure: applier?.failure?.message ?? this.#deposedBy?.message ?? null,
    };
  }

  /** Refuses user writes for as long as this database is not the leader. */
  #refuseUserWrites(): void {
    const refusal = new LightningError(
      'ERR_NOT_LEADER',
      `this database follows replication log ${this.#stream.name}: write to its leader (or promote it)`,
    );
    for (const channel of this.#db.userChannels)
      channel.refuseWhile(refusal, () => this.#role === 'follower');
  }

  /** Starts applying the log from the positions the partitions hold. */
  #follow(): void {
    const positions = this.#positionKeys.map((key, partition): ReplicaPosition => {
      const value = this.#db.readKey(key);
      return value === undefined ? emptyPosition() : decodePosition(value, partition);
    });
    this.#applier = new ReplicaApplier(this.#js, this.#stream, {
      partitions: this.#db.partitions,
      positionKeys: this.#positionKeys,
      positions,
      partitionOf: (key) => this.#db.partitionOf(key),
      apply: (partition, entries) => this.#db.apply(partition, entries),
    });
  }

  #positionEntry(partition: number, position: ReplicaPosition): BatchEntry {
    return { kind: operationPut, key: this.#positionKeys[partition]!, value: encodePosition(position) };
  }

  /** The largest message to publish: the server's max_payload, less room for NATS headers. */
  #messageBytesMax(): number {
    const serverMax = this.#nc.info?.max_payload ?? 1024 * 1024;
    return Math.min(serverMax - 4096, envelopeHeaderBytes + envelopePayloadBytesMax);
  }
}

import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReplicationStats } from '../../replication/replication-types.js';

const roles = ['leader', 'follower', 'deposed'] as const;

/**
 * A replicated database's metrics, from `stats().replication`: registered on the first scrape of a
 * replicated database, so that a database that is not replicated shows none of them (rather than 0).
 */
export class ReplicationMetrics {
  readonly #role: Gauge<'role'>;
  readonly #term: Gauge;
  readonly #position: Gauge;
  readonly #lagMessages: Gauge;
  readonly #lagSeconds: Gauge<'quantile'>;
  readonly #failed: Gauge;
  readonly #envelopesApplied: Counter;
  readonly #messagesPublished: Counter;
  readonly #batchesPublished: Counter;
  readonly #publishRetries: Counter;
  readonly #checkpointed: Gauge;
  readonly #trimmedBelow: Gauge;

  constructor(registry: Registry) {
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Gauge({ name, help, labelNames, registers: [registry] });
    const counter = (name: string, help: string) => new Counter({ name, help, registers: [registry] });
    this.#role = gauge('lightning_replication_role', '1 for the role this database has now, else 0', [
      'role',
    ]);
    this.#term = gauge(
      'lightning_replication_term',
      "The leader's lease term (its KV revision); 0 on a follower",
    );
    this.#position = gauge(
      'lightning_replication_position',
      'Stream sequence: the last published (leader) or the last applied (follower)',
    );
    this.#lagMessages = gauge(
      'lightning_replication_lag_messages',
      'Follower: messages in the stream not yet delivered here, as of the last delivery',
    );
    this.#lagSeconds = gauge(
      'lightning_replication_lag_seconds',
      'Follower: from the stream storing a message to it being visible here, over recent messages',
      ['quantile'],
    );
    this.#failed = gauge(
      'lightning_replication_failed',
      '1 once applying stopped (a follower that cannot go on) or this leader was deposed, else 0',
    );
    this.#envelopesApplied = counter(
      'lightning_replication_envelopes_applied_total',
      'Follower: envelopes (one partition batch each) applied since it started following',
    );
    this.#messagesPublished = counter(
      'lightning_replication_messages_published_total',
      'Leader: stream messages published',
    );
    this.#batchesPublished = counter(
      'lightning_replication_batches_published_total',
      'Leader: owner batches (group commits) carried by those messages',
    );
    this.#publishRetries = counter(
      'lightning_replication_publish_retries_total',
      'Leader: publish attempts beyond the first (an election, a lost connection)',
    );
    this.#checkpointed = gauge(
      'lightning_replication_checkpointed_position',
      "Leader: the stream sequence its partitions' durable positions name (a backup resumes after it)",
    );
    this.#trimmedBelow = gauge(
      'lightning_replication_trimmed_below',
      "The log's messages below this stream sequence were trimmed by this database while it led",
    );
  }

  set(stats: ReplicationStats): void {
    for (const role of roles) this.#role.set({ role }, stats.role === role ? 1 : 0);
    this.#term.set(stats.term);
    this.#position.set(stats.position);
    this.#lagMessages.set(stats.lagMessages);
    this.#lagSeconds.set({ quantile: '0.5' }, stats.lagMsP50 / 1000);
    this.#lagSeconds.set({ quantile: '0.99' }, stats.lagMsP99 / 1000);
    this.#failed.set(stats.failure === null ? 0 : 1);
    this.#envelopesApplied.inc(stats.envelopesApplied);
    this.#messagesPublished.inc(stats.messagesPublished);
    this.#batchesPublished.inc(stats.batchesPublished);
    this.#publishRetries.inc(stats.publishRetries);
    this.#checkpointed.set(stats.checkpointedPosition);
    this.#trimmedBelow.set(stats.trimmedBelow);
  }
}

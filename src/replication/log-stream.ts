import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { LightningError } from '../shared-memory/errors.js';
import { envelopeHeaderBytes, envelopePayloadBytesMax } from './log-envelope.js';
import { isStreamNotFound, replicationError } from './nats-errors.js';
import { duplicateWindowMs, replicasDefault } from './replication-limits.js';

/**
 * The JetStream stream that carries a database's replication log: file storage, replicated (3
 * copies unless told), nothing ever discarded to make room for new messages (a full stream rejects
 * the publish instead: a leader must learn its log did not get through), deletes of single messages
 * denied, and a duplicate window in which a retried publish is recognised by its message id.
 * Nothing is trimmed by age or size: the leader purges the messages below its checkpoints once they
 * are `retainMs` old (leader-checkpoints.ts), keeping the last message (the fence needs it).
 */
export interface LogStream {
  readonly name: string;
  /** The one subject the log is published on; fencing expects its last sequence. */
  readonly subject: string;
  readonly replicas: number;
}

export interface LogStreamOptions {
  /** Stream name (letters, digits, `-`, `_`). */
  name: string;
  replicas?: number;
  /**
   * The partition count of the databases on this log, recorded in the stream's description by the
   * first database that creates it and checked by every later one: a key's partition depends on the
   * count, so a follower with another count would file the leader's records where its reads never
   * look.
   */
  partitions?: number;
}

const partitionsPattern = /partitions=(\d+)/;

const streamNamePattern = /^[A-Za-z0-9_-]{1,64}$/;

/** The subject of a stream's log: `lightning.<stream>.log`. */
export function logSubjectOf(stream: string): string {
  return `lightning.${stream}.log`;
}

/**
 * Creates the log stream, or checks that the existing one has the same subject, replica count and
 * (when both say) partition count: ERR_BAD_ARGUMENT if not (fencing, durability and where each
 * record goes depend on them).
 */
export async function ensureLogStream(jsm: JetStreamManager, options: LogStreamOptions): Promise<LogStream> {
  const { name } = options;
  if (typeof name !== 'string' || !streamNamePattern.test(name)) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `a log stream name must match ${streamNamePattern}, got ${name}`,
    );
  }
  const replicas = options.replicas ?? replicasDefault;
  const subject = logSubjectOf(name);
  const config: Partial<StreamConfig> & { name: string } = {
    name,
    subjects: [subject],
    num_replicas: replicas,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    duplicate_window: nanos(duplicateWindowMs),
    max_msg_size: envelopeHeaderBytes + envelopePayloadBytesMax,
    deny_delete: true,
    ...(options.partitions === undefined
      ? {}
      : { description: `lightning-db replication log; partitions=${options.partitions}` }),
  };
  let existing: StreamConfig;
  try {
    try {
      existing = (await jsm.streams.info(name)).config;
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      existing = (await jsm.streams.add(config)).config;
    }
  } catch (error) {
    throw replicationError(`creating log stream ${name}`, error);
  }
  if (
    existing.num_replicas !== replicas ||
    existing.subjects?.length !== 1 ||
    existing.subjects[0] !== subject
  ) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `log stream ${name} exists with subjects ${JSON.stringify(existing.subjects)} and ${existing.num_replicas} ` +
        `replicas, not [${subject}] and ${replicas}`,
    );
  }
  const recorded = partitionsPattern.exec(existing.description ?? '')?.[1];
  if (options.partitions !== undefined && recorded !== undefined && Number(recorded) !== options.partitions) {
    throw new LightningError(
      'ERR_BAD_ARGUMENT',
      `log stream ${name} carries a database of ${recorded} partitions, and this one has ${options.partitions}: ` +
        "every database of a replication log must have the leader's partition count",
    );
  }
  return { name, subject, replicas };
}

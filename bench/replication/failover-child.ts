/**
 * The leader of a failover round, in a child process the parent will SIGKILL: opens the leader
 * (leaseTtlMs as told) on the round's stream, prints `ready`, then writes the seeded keys in order
 * with a few lanes and prints `acked <i>` for each put that resolved, before the lane issues its next.
 * stdout is a pipe, which Node writes synchronously on Linux: a printed key is in the pipe before the
 * process can be killed, so every line the parent reads names an acknowledged write.
 */
import { emitLine } from '../lib/child-output.js';
import type { FailoverChildLine } from './lines.js';
import { failoverKeys, failoverLanes, putWorkload, shape } from './workload.js';

export interface FailoverChildOptions {
  dir: string;
  servers: string[];
  stream: string;
  leaseTtlMs: number;
  killAfter: number;
  seed: number;
}

const emit: (line: FailoverChildLine) => void = emitLine;

/** A child nobody killed (the parent died) stops by itself after this long. */
const lifetimeMsMax = 300_000;

export async function runFailoverChild(options: FailoverChildOptions): Promise<void> {
  setTimeout(() => process.exit(3), lifetimeMsMax).unref();
  const { keys, values } = putWorkload(failoverKeys(options.killAfter), options.seed);
  const { open } = await import('../../src/index.js');
  const db = await open(options.dir, {
    ...shape(),
    durability: 'replicated',
    replication: {
      servers: options.servers,
      stream: options.stream,
      name: 'failover-leader',
      leaseTtlMs: options.leaseTtlMs,
    },
  });
  emit({ kind: 'ready', term: db.replication!.stats().term });
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < keys.length) {
      const i = next++;
      await db.put(keys[i]!, values[i]!);
      emit({ kind: 'acked', i });
    }
  };
  await Promise.all(Array.from({ length: failoverLanes }, lane));
  // Out of keys before the kill: keep the lease (and the process) until the parent kills it.
  await new Promise(() => {});
}

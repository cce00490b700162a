/**
 * Sequential writers with a log of what they issued, and the check that a database state is exactly
 * what some prefix of that log leaves: how a test proves a backup taken while writers run holds one
 * instant of them. A writer awaits each operation before issuing the next, so the writes committed at
 * or before any instant are a prefix of its log; a state that mixes instants (a later write seen, an
 * earlier one missed) matches no prefix.
 */

type Database = Awaited<ReturnType<typeof import('../../src/index.js').open>>;

export type WriterOperation =
  | { type: 'put'; key: string; value: string }
  | { type: 'del'; key: string }
  | {
      type: 'batch';
      operations: ({ type: 'put'; key: string; value: string } | { type: 'del'; key: string })[];
    };

export interface WriterLog {
  /** Every key this writer writes starts with it. */
  readonly prefix: string;
  /** Operations in issue order. */
  readonly operations: WriterOperation[];
  /** How many of them have resolved (always a prefix: one is in flight at a time). */
  acknowledged: number;
}

/** The keys an operation writes. */
function touched(operation: WriterOperation): string[] {
  return operation.type === 'batch' ? operation.operations.map((o) => o.key) : [operation.key];
}

function applyTo(model: Map<string, string>, operation: WriterOperation): void {
  const single = operation.type === 'batch' ? operation.operations : [operation];
  for (const o of single) {
    if (o.type === 'put') model.set(o.key, o.value);
    else model.delete(o.key);
  }
}

/**
 * Runs one writer until `stop()` says so: puts, deletes and batches over `keys` keys of its own
 * (spread over every partition by the hash), each value naming the writer and the operation's number
 * so no two writes leave the same value.
 */
export async function runWriter(
  db: Database,
  log: WriterLog,
  random: () => number,
  keys: number,
  stop: () => boolean,
): Promise<void> {
  const key = () => `${log.prefix}${String(random() % keys).padStart(5, '0')}`;
  while (!stop()) {
    const n = log.operations.length;
    const value = (i: number) => `${log.prefix}op${n}.${i}:${'x'.repeat(random() % 64)}`;
    const roll = random() % 10;
    let operation: WriterOperation;
    if (roll < 6) operation = { type: 'put', key: key(), value: value(0) };
    else if (roll < 8) operation = { type: 'del', key: key() };
    else {
      const operations: ({ type: 'put'; key: string; value: string } | { type: 'del'; key: string })[] = [];
      const seen = new Set<string>();
      const size = 2 + (random() % 4);
      for (let i = 0; i < size; i++) {
        const k = key();
        if (seen.has(k)) continue;
        seen.add(k);
        operations.push(
          random() % 4 === 0 ? { type: 'del', key: k } : { type: 'put', key: k, value: value(i) },
        );
      }
      operation = { type: 'batch', operations };
    }
    log.operations.push(operation);
    if (operation.type === 'put') await db.put(operation.key, operation.value);
    else if (operation.type === 'del') await db.del(operation.key);
    else await db.batch(operation.operations);
    log.acknowledged = log.operations.length;
  }
}

/**
 * The length of a prefix of the log, between `atLeast` and `atMost` operations, that leaves exactly
 * `state` (this writer's keys of a database, key to value), or -1 if none does. O(operations + keys):
 * the set of keys where model and state differ is kept up to date as the model advances.
 */
export function matchingPrefix(
  log: WriterLog,
  state: ReadonlyMap<string, string>,
  atLeast: number,
  atMost: number,
): number {
  const model = new Map<string, string>();
  for (let i = 0; i < atLeast; i++) applyTo(model, log.operations[i]!);
  const differing = new Set<string>();
  for (const key of new Set([...model.keys(), ...state.keys()])) {
    if (model.get(key) !== state.get(key)) differing.add(key);
  }
  if (differing.size === 0) return atLeast;
  for (let n = atLeast; n < atMost; n++) {
    const operation = log.operations[n]!;
    applyTo(model, operation);
    for (const key of touched(operation)) {
      if (model.get(key) === state.get(key)) differing.delete(key);
      else differing.add(key);
    }
    if (differing.size === 0) return n + 1;
  }
  return -1;
}

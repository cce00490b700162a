/**
 * Named fail-points for crash tests: a test opens the database with
 * `failpoints: { 'owner.apply': 'crash-after:100' }` and the owner worker exits abruptly when it is
 * about to stage its 101st operation; `{ 'owner.before-sync': 'delay:1000' }` makes every pass wait a
 * second before its log write and sync, as a slow disk would. Each fail-point is named at its call
 * site. Testing only.
 */
export type FailpointName = 'owner.apply' | 'owner.before-sync' | 'tx.after-prepare' | 'tx.after-decision';
export type FailpointSpec = Partial<Record<FailpointName, string>>;

const failpointNames: readonly FailpointName[] = [
  'owner.apply',
  'owner.before-sync',
  'tx.after-prepare',
  'tx.after-decision',
];

/** Called where a coordinator reaches a gated fail-point; it goes on once the promise settles. */
export type FailpointGate = () => Promise<void>;

/**
 * Gates of this thread's coordinators, set by in-process tests that must hold a transaction at a
 * fail-point (between PREPARE and its decision, say) for as long as they need. A gate cannot travel
 * in open options to another thread, so it lives here, per thread. Testing only.
 */
const gates = new Map<FailpointName, FailpointGate>();

/** Sets (or, with null, removes) the gate of `name` for every coordinator of this thread. */
export function setFailpointGate(name: FailpointName, gate: FailpointGate | null): void {
  if (gate === null) gates.delete(name);
  else gates.set(name, gate);
}

export class Failpoints {
  readonly #crashAfter = new Map<FailpointName, number>();
  readonly #delayMs = new Map<FailpointName, number>();
  readonly #hits = new Map<FailpointName, number>();

  constructor(spec: FailpointSpec | undefined) {
    for (const name of Object.keys(spec ?? {})) {
      if (!failpointNames.includes(name as FailpointName))
        throw new Error(`unknown fail-point ${JSON.stringify(name)}`);
    }
    for (const name of failpointNames) {
      const action = spec?.[name];
      if (action === undefined) continue;
      const delay = /^delay:(\d+)$/.exec(action);
      if (delay !== null) {
        this.#delayMs.set(name, Number(delay[1]));
        continue;
      }
      const match = /^crash-after:(\d+)$/.exec(action);
      if (match === null) throw new Error(`unknown fail-point action ${JSON.stringify(action)} for ${name}`);
      this.#crashAfter.set(name, Number(match[1]));
    }
  }

  /** Waits as long as `name`'s delay says; without one, resolves at once. */
  async pause(name: FailpointName): Promise<void> {
    const delayMs = this.#delayMs.get(name);
    if (delayMs === undefined) return;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }

  /** The gate a test set on `name`, called: the coordinator awaits it. Null when no gate is set. */
  gate(name: FailpointName): Promise<void> | null {
    return gates.get(name)?.() ?? null;
  }

  /** Counts a hit of `name` and ends the thread if its crash point is reached. */
  hit(name: FailpointName): void {
    const limit = this.#crashAfter.get(name);
    if (limit === undefined) return;
    const hits = (this.#hits.get(name) ?? 0) + 1;
    this.#hits.set(name, hits);
    if (hits <= limit) return;
    // A coordinator's fail-point kills the whole process, as a crash would, whatever thread it runs on.
    if (name.startsWith('tx.')) process.kill(process.pid, 'SIGKILL');
    // process.exit in a worker thread ends that thread only, without running its pending work.
    process.exit(70);
  }
}

/**
 * Starts a worker thread running a TypeScript module under vitest. On Node 20 a worker ignores
 * `--import` in its execArgv, so an eval bootstrap registers tsx's ESM hooks, then imports the module.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** tsx's ESM register API (its CommonJS build cannot load its hooks inside a worker). */
const tsxApiUrl = ((): string => {
  const requireHere = createRequire(import.meta.url);
  const manifestPath = requireHere.resolve('tsx/package.json');
  const manifest = requireHere(manifestPath) as { exports: { './esm/api': { import: { default: string } } } };
  return pathToFileURL(join(dirname(manifestPath), manifest.exports['./esm/api'].import.default)).href;
})();

export function startTsWorker(url: URL, workerData: unknown): Worker {
  const bootstrap =
    `import(${JSON.stringify(tsxApiUrl)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * Collects a worker's messages and failures: `next(type)` resolves with the next message of that
 * type, and rejects if the worker crashes, exits, or posts a message of type 'failed' (whose
 * `message` field says why) first.
 */
export class WorkerMailbox<M extends { type: string }> {
  readonly #queued: M[] = [];
  readonly #waiting: Array<{ type: string; resolve: (message: M) => void; reject: (error: Error) => void }> =
    [];
  #failure: Error | null = null;

  constructor(
    readonly worker: Worker,
    readonly name: string,
  ) {
    worker.on('message', (message: M) => {
      if (message.type === 'failed') {
        const reason = (message as { message?: unknown }).message;
        this.#fail(new Error(`${name} failed: ${String(reason)}`));
        return;
      }
      const index = this.#waiting.findIndex((waiter) => waiter.type === message.type);
      if (index < 0) this.#queued.push(message);
      else this.#waiting.splice(index, 1)[0]!.resolve(message);
    });
    worker.on('error', (error) => this.#fail(new Error(`${name} crashed: ${error.stack ?? String(error)}`)));
    worker.on('exit', (code) => this.#fail(new Error(`${name} exited with code ${code}`)));
  }

  next<T extends M['type']>(type: T): Promise<Extract<M, { type: T }>> {
    const index = this.#queued.findIndex((message) => message.type === type);
    if (index >= 0) return Promise.resolve(this.#queued.splice(index, 1)[0] as Extract<M, { type: T }>);
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ type, resolve: resolve as (message: M) => void, reject });
    });
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }
}

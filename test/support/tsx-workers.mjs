/**
 * Preloaded (`--import`) into a documentation example's process, which runs TypeScript through tsx: a
 * Worker started on a module file (the README's quick start starts its app worker on its own module)
 * runs that module through tsx too, as an installed package's JavaScript would run in a plain worker.
 * On Node 20 a worker's entry module is loaded without the tsx hooks that the `--import` preloads it
 * inherits register, so an eval bootstrap registers tsx's ESM hooks inside the worker first and then
 * imports the entry. Eval workers (the engine's owner workers bootstrap themselves) pass through.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const threads = require('node:worker_threads');
const manifestPath = require.resolve('tsx/package.json');
const tsxApiUrl = pathToFileURL(
  join(dirname(manifestPath), require(manifestPath).exports['./esm/api'].import.default),
).href;

class TsxWorker extends threads.Worker {
  constructor(filename, options = {}) {
    if (options.eval === true) {
      super(filename, options);
      return;
    }
    const entry = filename instanceof URL ? filename.href : pathToFileURL(resolve(String(filename))).href;
    const bootstrap =
      `import(${JSON.stringify(tsxApiUrl)})` +
      `.then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
    super(bootstrap, { ...options, eval: true });
  }
}

threads.Worker = TsxWorker;
syncBuiltinESMExports();

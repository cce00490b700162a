/** What a benchmark child process does between phases and to report to its parent. */

/** Writes one JSON line on stdout: the parent reads progress and the result line by line. */
export function emitLine(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** A collection before each phase, so one phase's garbage is not collected on the next phase's clock. */
export function collectGarbage(): void {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run with --expose-gc (the parent passes it to every child)');
  gc();
}

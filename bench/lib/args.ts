/** Command-line parsing the benchmarks share. */

export function parsePositiveInteger(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${flag} needs a positive integer, got ${text ?? 'nothing'}`);
  }
  return value;
}

/** Runs `parse` on the process's arguments; a usage mistake, not a crash, exits 2 with one line and no stack trace. */
export function parseArgumentsOrExit<T>(parse: (argv: string[]) => T): T {
  try {
    return parse(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
}

/** `text` if it is one of `names`, else an error naming the `what` and listing the choices. */
export function parseOneOf<T extends string>(what: string, names: readonly T[], text: string | undefined): T {
  const name = names.find((candidate) => candidate === text);
  if (name === undefined) {
    throw new Error(`unknown ${what} ${text ?? '(none)'}; ${what}s: ${names.join(', ')}`);
  }
  return name;
}

/** A comma-separated list of `names` (e.g. --stores a,b), each checked as parseOneOf checks one. */
export function parseListOf<T extends string>(
  what: string,
  names: readonly T[],
  text: string | undefined,
): T[] {
  return (text ?? '').split(',').map((name) => parseOneOf(what, names, name));
}

/**
 * The part of better-sqlite3's API the benchmarks use. The package ships no type declarations and
 * @types/better-sqlite3 is not a dependency, so the calls are typed here; better-sqlite3 itself is
 * installed into bench/node_modules on first use (bench/lib/peers.ts).
 */
declare module 'better-sqlite3' {
  interface Statement<Parameters extends unknown[], Row> {
    run(...parameters: Parameters): { changes: number };
    get(...parameters: Parameters): Row | undefined;
    all(...parameters: Parameters): Row[];
    /** Return the first column of each row instead of an object. */
    pluck(): Statement<Parameters, Row>;
    /** Return each row as an array of its columns. */
    raw(): Statement<Parameters, Row>;
  }

  class Database {
    constructor(filename: string);
    pragma(source: string): unknown;
    exec(source: string): this;
    prepare<Parameters extends unknown[] = [], Row = unknown>(source: string): Statement<Parameters, Row>;
    /** Wraps `fn` in BEGIN .. COMMIT (ROLLBACK if it throws). */
    transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
    close(): this;
  }

  export default Database;
}

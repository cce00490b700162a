/**
 * The parent's handle on a replicated-child.ts process: its report lines as they arrive, a wait for
 * a line the test needs (bounded, and failing with the child's output), signals (SIGSTOP, SIGCONT,
 * SIGKILL), and its end. A "F" line fails every wait with the child's message.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { stepMs } from '../support/nats-log.js';

const script = fileURLToPath(new URL('./replicated-child.ts', import.meta.url));
/** The package root: `--import tsx` resolves tsx from the working directory. */
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
const outputTailBytes = 8192;

export interface ChildArguments {
  mode: 'lead' | 'follow';
  dir: string;
  servers: string[];
  stream: string;
  name: string;
  leaseTtlMs: number;
  /** A file layer module for the child's database (the fault layer, for power-loss tests). */
  fileLayer?: string;
  env?: NodeJS.ProcessEnv;
}

export class ReplicatedChild {
  readonly lines: string[] = [];
  readonly #child: ChildProcess;
  readonly #ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #output = '';
  #failure: string | null = null;
  #wake: (() => void) | null = null;

  constructor(args: ChildArguments) {
    const argv = [
      args.mode,
      args.dir,
      args.servers.join(','),
      args.stream,
      args.name,
      String(args.leaseTtlMs),
    ];
    if (args.fileLayer !== undefined) argv.push(args.fileLayer);
    this.#child = spawn(process.execPath, ['--import', 'tsx', script, ...argv], {
      cwd: packageRoot,
      env: args.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let partial = '';
    const reports = this.#child.stdio[3] as Readable;
    reports.setEncoding('utf8');
    reports.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        if (line.startsWith('F ')) this.#failure ??= line.slice(2);
      }
      this.#wake?.();
    });
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        this.#output = `${this.#output}${chunk}`.slice(-outputTailBytes);
      });
    }
    this.#ended = new Promise((resolve) => {
      this.#child.on('close', (code, signal) => {
        this.#failure ??= signal === null ? `the child exited with code ${code}` : null;
        this.#wake?.();
        resolve({ code, signal });
      });
    });
  }

  /** Resolves with the first line (from the start) that `matches`; fails on a child failure or after stepMs. */
  waitFor(what: string, matches: (line: string) => boolean): Promise<string> {
    return this.#until(what, () => this.lines.find(matches));
  }

  /** Resolves once `count` lines matching `matches` arrived. */
  async waitForCount(what: string, count: number, matches: (line: string) => boolean): Promise<void> {
    await this.#until(what, () => (this.lines.filter(matches).length >= count ? true : undefined));
  }

  /** Polls `probe` after every report (and every 100 ms) until it finds something. */
  async #until<T>(what: string, probe: () => T | undefined): Promise<T> {
    const deadline = Date.now() + stepMs;
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      if (this.#failure !== null) throw this.#error(`${what}: ${this.#failure}`);
      if (Date.now() > deadline) throw this.#error(`${what}: not reported within ${stepMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    this.#child.kill(signal);
  }

  /** SIGKILLs the child; resolves once it and its pipes are gone. */
  async kill(): Promise<void> {
    this.#child.kill('SIGKILL');
    await this.#ended;
  }

  /** The keys and values of every put the child reported acknowledged. */
  acknowledged(): Map<string, string> {
    const acked = new Map<string, string>();
    for (const line of this.lines) {
      const [tag, n] = line.split(' ');
      if (tag === 'A') acked.set(`c${n}`, `v${n}`);
    }
    return acked;
  }

  #error(message: string): Error {
    return new Error(`${message}\n--- child output (tail) ---\n${this.#output}`);
  }
}

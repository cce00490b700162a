/**
 * Progress of long CLI work, always on stderr so that stdout carries only the result (and stays
 * parseable with --json). On a terminal it is one bar redrawn in place; anywhere else (a pipe, a log
 * file, CI) it is one plain line per step, because carriage returns and escape codes would garble a
 * log and a redrawn line is never seen there anyway.
 */

export interface Progress {
  /** Announces the next step, numbered from 1; `label` says what it works on. */
  step(label: string): void;
  /** Ends the progress display; the bar is erased so the result that follows starts on a clean line. */
  done(): void;
}

export interface ProgressOptions {
  /** Suppresses all progress output. */
  quiet: boolean;
  /** Where to draw; stderr unless a test says otherwise. */
  stream?: NodeJS.WriteStream;
}

/** Narrowest bar worth drawing; below this a terminal is too narrow to show anything useful. */
const barCellsMin = 10;
const barCellsMax = 40;
/** Redrawing faster than a screen refreshes costs writes and shows nothing more. */
const redrawIntervalMs = 50;
const columnsDefault = 80;

const silent: Progress = { step: () => undefined, done: () => undefined };

/** A progress display of `totalSteps` steps titled `title` (e.g. "verify"). */
export function createProgress(title: string, totalSteps: number, options: ProgressOptions): Progress {
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 0) {
    throw new RangeError(`totalSteps must be a non-negative integer, got ${totalSteps}`);
  }
  if (options.quiet) return silent;
  const stream = options.stream ?? process.stderr;
  return stream.isTTY === true
    ? barProgress(title, totalSteps, stream)
    : lineProgress(title, totalSteps, stream);
}

function lineProgress(title: string, totalSteps: number, stream: NodeJS.WriteStream): Progress {
  let current = 0;
  return {
    step(label) {
      current++;
      stream.write(`${title}: [${current}/${totalSteps}] ${label}\n`);
    },
    done: () => undefined,
  };
}

function barProgress(title: string, totalSteps: number, stream: NodeJS.WriteStream): Progress {
  let current = 0;
  let drawnAtMs = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    step(label) {
      current++;
      const nowMs = Date.now();
      // The last step is always drawn, so a fast run still ends showing the full count.
      if (nowMs - drawnAtMs < redrawIntervalMs && current < totalSteps) return;
      drawnAtMs = nowMs;
      drawn = true;
      stream.write(`\r${renderBar(title, current, totalSteps, label, columnsOf(stream))}\x1b[K`);
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}

/** A pseudo-terminal can report 0 columns (no size set); draw for a common width then. */
function columnsOf(stream: NodeJS.WriteStream): number {
  const columns = stream.columns ?? 0;
  return columns > 0 ? columns : columnsDefault;
}

/** One line: `title [#####.....] 3/16 label`, cut to fit `columns` so it never wraps. */
export function renderBar(
  title: string,
  current: number,
  totalSteps: number,
  label: string,
  columns: number,
): string {
  const counter = `${current}/${totalSteps}`;
  const cells = Math.max(barCellsMin, Math.min(barCellsMax, columns - title.length - counter.length - 30));
  // The bar shows finished steps: while step `current` runs, `current - 1` are done.
  const filled = totalSteps === 0 ? cells : Math.floor((cells * (current - 1)) / totalSteps);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(cells - filled)}`;
  const line = `${title} [${bar}] ${counter} ${label}`;
  // A line as wide as the terminal makes some terminals wrap before the \r, so stay one short.
  return line.length < columns ? line : line.slice(0, Math.max(0, columns - 1));
}

/** Runs `work` with a progress display that is ended however the work ends, so an error prints clean. */
export async function withProgress<T>(
  title: string,
  totalSteps: number,
  quiet: boolean,
  work: (progress: Progress) => Promise<T>,
): Promise<T> {
  const progress = createProgress(title, totalSteps, { quiet });
  try {
    return await work(progress);
  } finally {
    progress.done();
  }
}

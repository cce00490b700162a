/**
 * Progress of a transfer counted in rows and bytes (load, dump), on stderr like every other progress
 * display (see progress.ts): a bar redrawn in place on a terminal, and elsewhere (pipes, logs, CI) a
 * plain line at most once per `lineIntervalMs`, plus one final line so a log always shows the total.
 */

export interface TransferProgress {
  /** The totals so far (not increments). Cheap to call often: drawing is rate-limited. */
  update(rows: number, bytes: number): void;
  /** Ends the display: erases the bar, or writes the final line. */
  done(): void;
}

export interface TransferTotals {
  /** The rows expected in all, when known (a dump knows its entry count). */
  rows?: number | null;
  /** The bytes expected in all, when known (a load from a file knows its size). */
  bytes?: number | null;
}

const redrawIntervalMs = 100;
const lineIntervalMs = 2000;
const barCells = 24;
const columnsDefault = 80;

const silent: TransferProgress = { update: () => undefined, done: () => undefined };

export function createTransferProgress(
  title: string,
  totals: TransferTotals,
  options: { quiet: boolean; stream?: NodeJS.WriteStream },
): TransferProgress {
  if (options.quiet) return silent;
  const stream = options.stream ?? process.stderr;
  const startedMs = Date.now();
  let rows = 0;
  let bytes = 0;
  let drawnAtMs = stream.isTTY === true ? Number.NEGATIVE_INFINITY : startedMs;
  let drawn = false;
  const describe = () => describeTransfer(rows, bytes, totals, Date.now() - startedMs);
  if (stream.isTTY === true) {
    return {
      update(rowsNow, bytesNow) {
        rows = rowsNow;
        bytes = bytesNow;
        const nowMs = Date.now();
        if (nowMs - drawnAtMs < redrawIntervalMs) return;
        drawnAtMs = nowMs;
        drawn = true;
        const line = `${title} ${bar(fractionOf(rows, bytes, totals))} ${describe()}`;
        const columns = (stream.columns ?? 0) > 0 ? stream.columns : columnsDefault;
        stream.write(`\r${line.length < columns ? line : line.slice(0, columns - 1)}\x1b[K`);
      },
      done() {
        if (drawn) stream.write('\r\x1b[K');
        drawn = false;
      },
    };
  }
  return {
    update(rowsNow, bytesNow) {
      rows = rowsNow;
      bytes = bytesNow;
      const nowMs = Date.now();
      if (nowMs - drawnAtMs < lineIntervalMs) return;
      drawnAtMs = nowMs;
      stream.write(`${title}: ${describe()}\n`);
    },
    done() {
      stream.write(`${title}: ${describe()}, done\n`);
    },
  };
}

/** How far along, from the byte total if known, else the row total; null when neither is known. */
function fractionOf(rows: number, bytes: number, totals: TransferTotals): number | null {
  if (totals.bytes != null && totals.bytes > 0) return Math.min(1, bytes / totals.bytes);
  if (totals.rows != null && totals.rows > 0) return Math.min(1, rows / totals.rows);
  return null;
}

function bar(fraction: number | null): string {
  if (fraction === null) return '';
  const filled = Math.floor(barCells * fraction);
  return `[${'#'.repeat(filled)}${'.'.repeat(barCells - filled)}] ${Math.floor(fraction * 100)}%`;
}

/** `12,000 rows, 1.2 MiB, 3,400 rows/s` (with `of` totals when known). */
export function describeTransfer(
  rows: number,
  bytes: number,
  totals: TransferTotals,
  elapsedMs: number,
): string {
  const rowText = totals.rows != null ? `${count(rows)}/${count(totals.rows)} rows` : `${count(rows)} rows`;
  const byteText =
    totals.bytes != null ? `${humanBytes(bytes)}/${humanBytes(totals.bytes)}` : humanBytes(bytes);
  const rate = elapsedMs > 0 ? `, ${count(Math.round((rows * 1000) / elapsedMs))} rows/s` : '';
  return `${rowText}, ${byteText}${rate}`;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `12.3 MiB`. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

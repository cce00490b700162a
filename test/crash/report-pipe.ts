/**
 * The child's side of a kill test: report lines to the parent on file descriptor 3 (stdout when run
 * by hand without it), each written synchronously, so a line is in the pipe before the call it
 * announces starts and a SIGKILL cannot lose it.
 */
import { fstatSync, writeSync } from 'node:fs';

const reportFd = hasFd(3) ? 3 : 1;

function hasFd(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes one report line synchronously. The pipe may be non-blocking, so EAGAIN (the parent has not
 * read yet) is retried; EPIPE means the parent is gone, and then there is nobody to write for.
 */
export function report(line: string): void {
  const bytes = Buffer.from(line);
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(reportFd, bytes, offset, bytes.length - offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      process.exit(code === 'EPIPE' ? 2 : 3);
    }
  }
}

/** Reports a failure as one "F" line (the parent fails the run with it) and exits. */
export function fail(message: string): never {
  report(`F ${message.replace(/\s+/g, ' ')}\n`);
  process.exit(1);
}

/**
 * Keeping the evidence of a failure: the directory as the crash left it (before recovery cut torn
 * tails and started new segments), moved to /tmp/crash-evidence-<seed> with notes and the child's
 * report lines.
 */
import { copyFile, cp, link, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newestSegments } from './wal-inspect.js';

/**
 * Keeps the directory as the crash left it, before recovery changes it: files are hard-linked (cheap,
 * and recovery never writes into an existing file except to cut the newest segment of a log, and it
 * replaces files by rename), and the newest segment of every log is copied into `snapshot`.
 */
export async function snapshotBeforeRecovery(dir: string, snapshot: string): Promise<void> {
  await rm(snapshot, { recursive: true, force: true });
  const newest = new Set((await newestSegments(dir)).map((segment) => segment.path));
  await copyTree(dir, snapshot, newest);
}

async function copyTree(from: string, to: string, copyInstead: ReadonlySet<string>): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) await copyTree(source, target, copyInstead);
    else if (copyInstead.has(source)) await copyFile(source, target);
    else await link(source, target);
  }
}

/** Moves a snapshot to /tmp/crash-evidence-<seed> (or a numbered sibling) with notes; returns the path. */
export async function keepEvidence(
  snapshot: string,
  seed: number,
  notes: string,
  reports: readonly string[],
): Promise<string> {
  let target = `/tmp/crash-evidence-${seed}`;
  for (let n = 2; await exists(target); n++) target = `/tmp/crash-evidence-${seed}-${n}`;
  // A rename keeps the hard links; across file systems, copy.
  await rename(snapshot, target).catch(() => cp(snapshot, target, { recursive: true }));
  await writeFile(join(target, 'CRASH-NOTES.txt'), `${notes}\n`);
  await writeFile(join(target, 'child-reports.txt'), `${reports.join('\n')}\n`);
  return target;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Fails a round: keeps the evidence (or says why it could not) and throws an error that names the
 * round (`what`), the failure, and where the directory was kept. `title` heads the message, e.g.
 * "CRASH TEST FAILURE"; `leftBy` says what left the directory so ("the crash", "the kill").
 */
export async function keepEvidenceAndThrow(
  failure: { readonly title: string; readonly leftBy: string },
  snapshot: string,
  seed: number,
  what: string,
  message: string,
  reports: readonly string[],
): Promise<never> {
  const kept = await keepEvidence(snapshot, seed, `${what}\n${message}`, reports).catch(
    (error: unknown) => `(could not keep the evidence: ${String(error)})`,
  );
  throw new Error(
    `${failure.title}, ${what}\n${message}\nthe directory as ${failure.leftBy} left it: ${kept}`,
  );
}

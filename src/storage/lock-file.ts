import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LightningError } from '../shared-memory/index.js';
import { checksumOf, isRecord } from './checksummed-json.js';

/** The file that marks a database directory as open for writing, naming the process that holds it. */
export const lockFileName = 'LOCK';

/** The `format` field of the lock file's JSON line. */
export const lockFileFormat = 'lightning-db-lock';
export const lockFileFormatVersion = 1;

/** Where Linux says which boot this is: a random id, new at every boot. */
const bootIdFile = '/proc/sys/kernel/random/boot_id';
/**
 * The 1-based field of /proc/<pid>/stat holding the process's start time, in clock ticks since boot
 * (proc(5): "(22) starttime").
 */
const statStartTimeField = 22;
/** The first field after the parenthesised command name, which may itself contain spaces and ')'. */
const statFieldAfterCommand = 3;

/**
 * Who holds a lock: the pid, and — where /proc exists — the process's start time and the boot, which
 * together name one process for the life of the machine, where a pid alone is reused.
 */
export interface LockHolder {
  pid: number;
  /** Clock ticks since boot at which the process started (a decimal string); null without /proc. */
  processStartTicks: string | null;
  /** /proc/sys/kernel/random/boot_id; null without /proc. */
  bootId: string | null;
}

/**
 * The lock file's text: the pid alone on the first line (what earlier versions wrote and read, so an
 * earlier build still sees a live holder), then one JSON line with the format, its version, the holder
 * and a checksum of them. A reader that finds no valid JSON line falls back to the pid.
 */
export async function encodeLockFile(holder: LockHolder): Promise<string> {
  const canonical = {
    format: lockFileFormat,
    formatVersion: lockFileFormatVersion,
    pid: holder.pid,
    processStartTicks: holder.processStartTicks,
    bootId: holder.bootId,
  };
  const content = { ...canonical, checksum: await checksumOf(canonical) };
  return `${holder.pid}\n${JSON.stringify(content)}\n`;
}

/**
 * Reads a lock file's text: the holder, with its start time and boot when the JSON line is present,
 * intact and of this version; the pid alone (the old "pid\n" format, or a damaged or newer JSON line);
 * null if not even a pid can be read.
 */
export async function decodeLockFile(text: string): Promise<LockHolder | null> {
  const [firstLine = '', jsonLine = ''] = text.split('\n');
  const pid = Number(firstLine.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const pidOnly: LockHolder = { pid, processStartTicks: null, bootId: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(jsonLine);
  } catch {
    return pidOnly;
  }
  if (!isRecord(parsed) || parsed.format !== lockFileFormat) return pidOnly;
  if (parsed.formatVersion !== lockFileFormatVersion || parsed.pid !== pid) return pidOnly;
  const { processStartTicks, bootId } = parsed;
  if (typeof processStartTicks !== 'string' && processStartTicks !== null) return pidOnly;
  if (typeof bootId !== 'string' && bootId !== null) return pidOnly;
  const holder: LockHolder = { pid, processStartTicks, bootId };
  const canonical = {
    format: lockFileFormat,
    formatVersion: lockFileFormatVersion,
    pid,
    processStartTicks,
    bootId,
  };
  return parsed.checksum === (await checksumOf(canonical)) ? holder : pidOnly;
}

/**
 * Takes the directory's lock: only one open database may write a directory's logs, or two owners
 * would interleave records in one log. The lock file names the process that holds it (see
 * encodeLockFile). A lock whose process no longer exists (killed, crashed, or from an earlier boot) is
 * stale and taken over, and so is one whose pid now belongs to another process (its start time
 * differs): pids are reused, after a reboot and in containers especially. A lock held by a live
 * process, this one included, is ERR_LOCKED. Where /proc is not available (not Linux), only the pid
 * is checked, as before: a reused pid then looks live, and the LOCK file must be removed by hand.
 *
 * The lock is a file rather than a kernel lock (flock/fcntl), which Node cannot take without a native
 * addon.
 */
export async function acquireLock(directory: string): Promise<() => Promise<void>> {
  const file = join(directory, lockFileName);
  const content = await encodeLockFile(await thisProcess());
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await createWhole(file, content)) return () => unlink(file).catch(() => {});
    const held = await readHolder(file);
    if (held === null) continue; // Removed meanwhile: try again.
    if (held.holder !== null && (await isHolderAlive(held.holder))) {
      const { pid } = held.holder;
      const self = pid === process.pid ? ' (this process)' : '';
      throw new LightningError(
        'ERR_LOCKED',
        `${directory} is open in process ${pid}${self}; close it there first`,
      );
    }
    // Stale. Remove it only if it is still the file judged stale (another opener may have taken it
    // over meanwhile and written its own), then try once more: one of the racing openers wins.
    const current = await stat(file).catch(() => null);
    if (current !== null && current.ino === held.inode) await unlink(file).catch(() => {});
  }
  throw new LightningError('ERR_LOCKED', `${directory} is being opened by another process`);
}

/**
 * The process holding `directory`'s lock, if it is alive (this one included), or null: for a
 * read-only open, which takes no lock, to see whether a writer has the database open.
 */
export async function liveLockHolder(directory: string): Promise<LockHolder | null> {
  const held = await readHolder(join(directory, lockFileName));
  if (held === null || held.holder === null) return null;
  return (await isHolderAlive(held.holder)) ? held.holder : null;
}

/** link(2) failures of a file system without hard links (some FUSE, SMB and FAT mounts). */
const noHardLinkCodes = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Creates `file` holding `content`, or returns false if it exists. The content is written to a
 * temporary file first and linked into place (link(2) fails if the name exists), so another opener
 * never sees a lock file that exists but is still empty. Where the file system has no hard links, the
 * file is created exclusively and written in place, as earlier versions did.
 */
async function createWhole(file: string, content: string): Promise<boolean> {
  const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await writeSynced(temporary, content);
    await link(temporary, file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!noHardLinkCodes.has(code)) throw error;
  } finally {
    await unlink(temporary).catch(() => {});
  }
  try {
    await writeSynced(file, content);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Creates `file` (failing with EEXIST if it exists), writes `content` and syncs it. */
async function writeSynced(file: string, content: string): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The lock file's holder (null if unreadable: treated as stale, as before) and inode; null if gone. */
async function readHolder(file: string): Promise<{ holder: LockHolder | null; inode: number } | null> {
  try {
    const inode = (await stat(file)).ino;
    return { holder: await decodeLockFile(await readFile(file, 'utf8')), inode };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** This process as a LockHolder. */
export async function thisProcess(): Promise<LockHolder> {
  return {
    pid: process.pid,
    processStartTicks: await processStartTicks(process.pid),
    bootId: await currentBootId(),
  };
}

/**
 * Whether the process that wrote `holder` still runs. With a boot id and start time (and /proc here)
 * the identity is checked: an earlier boot, or a pid whose process started at another time, is another
 * process. Otherwise only the pid's existence is checked.
 */
export async function isHolderAlive(holder: LockHolder): Promise<boolean> {
  if (holder.bootId !== null) {
    const bootId = await currentBootId();
    if (bootId !== null && bootId !== holder.bootId) return false;
  }
  if (!isPidAlive(holder.pid)) return false;
  if (holder.processStartTicks === null) return true;
  const startTicks = await processStartTicks(holder.pid);
  // Unreadable (/proc absent, or hidden by hidepid) though the pid exists: assume it is the holder.
  return startTicks === null || startTicks === holder.processStartTicks;
}

/** /proc/<pid>/stat's start time, or null if it cannot be read (no /proc, no such process). */
export async function processStartTicks(pid: number): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name is in parentheses and may hold anything: the fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const startTicks = fields[statStartTimeField - statFieldAfterCommand];
  return startTicks !== undefined && /^[0-9]+$/.test(startTicks) ? startTicks : null;
}

async function currentBootId(): Promise<string | null> {
  const text = await readFile(bootIdFile, 'utf8').catch(() => null);
  const bootId = text?.trim() ?? '';
  return bootId.length > 0 ? bootId : null;
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

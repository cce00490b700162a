import type { LayerFileHandle } from './file-layer.js';

/**
 * Writes `buffers` one after another at `position`, all of them: a short `pwritev` (rare: a signal,
 * or a disk filling up) goes on with the rest, so the call either completes or fails with the error
 * of the write that could not make progress.
 */
export async function writevFully(
  handle: LayerFileHandle,
  buffers: readonly Uint8Array[],
  position: number,
): Promise<void> {
  const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
  let { bytesWritten } = await handle.writev(buffers, position);
  if (bytesWritten >= total) return;
  const rest = Buffer.concat(buffers);
  while (bytesWritten < total) {
    const written = await handle.write(rest, bytesWritten, total - bytesWritten, position + bytesWritten);
    if (written.bytesWritten === 0)
      throw new Error(`write made no progress at byte ${bytesWritten} of ${total}`);
    bytesWritten += written.bytesWritten;
  }
}

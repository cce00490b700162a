/**
 * How a buffer pool reads a page it misses. The shared-memory layer does no I/O of its own: each
 * thread hands its pool a loader (the storage layer's page-file reader), which reads the page's image
 * synchronously into the frame it is given and verifies it, throwing a LightningError if it cannot.
 */
export interface PageLoader {
  /** Fills `frame` (exactly one page) with page `pageId`'s verified image. */
  load(pageId: number, frame: Uint8Array): void;
}

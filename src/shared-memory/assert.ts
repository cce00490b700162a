import { LightningError } from './errors.js';

/**
 * A failed assertion is a bug in the engine, never a user error: it is raised as ERR_INTERNAL so that
 * it is loud and distinguishable from the operating errors callers are expected to handle.
 */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new LightningError('ERR_INTERNAL', `assertion failed: ${message}`);
}

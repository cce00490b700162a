import { isLightningError } from '../../src/shared-memory/errors.js';

/** The code a call fails with ('ERR_…'), or 'ok'; anything but a LightningError is thrown on. */
export async function outcome(call: () => unknown): Promise<string> {
  try {
    await call();
    return 'ok';
  } catch (error) {
    if (isLightningError(error)) return error.code;
    throw error;
  }
}

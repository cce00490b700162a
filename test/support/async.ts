import { LightningError } from '../../src/index.js';

/** Rejects naming `what` when `promise` has not settled within `ms`: a hang fails the test, with a reason. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The code of a LightningError, or a description of anything else, for assertions that name it. */
export function codeOf(error: unknown): string {
  return error instanceof LightningError ? error.code : `not a LightningError: ${String(error)}`;
}

/** The error `promise` rejects with; fails (throws) if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** The code of what `fn` throws (see codeOf), or 'no error'. */
export function codeOfThrow(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return codeOf(error);
  }
  return 'no error';
}

/**
 * The outcome of a call that must return a promise and report errors by rejecting it: 'resolved',
 * the rejection's code, or 'threw synchronously: <code>'. A call that never settles within
 * `settleMs` fails the test with a reason.
 */
export async function asyncOutcome(call: () => Promise<unknown>, settleMs: number): Promise<string> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    return `threw synchronously: ${codeOf(error)}`;
  }
  return within(
    promise.then(() => 'resolved', codeOf),
    settleMs,
    'a call expected to settle',
  );
}

/** Bad input smuggled past the type checker, as untyped JavaScript callers would pass it. */
export function unchecked<T>(value: unknown): T {
  return value as T;
}

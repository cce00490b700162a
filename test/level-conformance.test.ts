import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseTap } from './support/tap-report.js';

/**
 * Level's own conformance suite (abstract-level/test, on tape) against LightningLevel, run from the
 * sources in a child process: test/fixtures/level-suite-runner.ts. Every failed assertion fails this
 * test, and so does a run that stopped early or ran far fewer tests than the suite holds (a suite
 * that silently ran nothing must not pass).
 *
 * Part of `npm test`, and on its own with `npm run test:level`. The suite opens about a thousand
 * databases, each starting an owner thread (one bundled file, see the runner): the longest file of
 * the suite, about two minutes on a shared 2-core machine.
 */

const runner = fileURLToPath(new URL('./fixtures/level-suite-runner.ts', import.meta.url));

/**
 * Floors well below what abstract-level 3.1's suite runs with LightningLevel's manifest: about 740
 * tests and 2,570 assertions in its main pass, and as many again in its pass on a sublevel. A lower
 * count means tests went missing.
 */
const testsMin = 1000;
const assertionsMin = 3500;

function runSuite(): Promise<{ output: string; exitCode: number | null; elapsedMs: number }> {
  const startedMs = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', runner], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) =>
      resolve({ output, exitCode, elapsedMs: performance.now() - startedMs }),
    );
  });
}

/**
 * Only a guard against a hang, far above the two minutes the suite takes on a shared 2-core machine:
 * about 1,000 opens, each well under a second even at a load average of 20.
 */
const suiteTimeoutMs = 900_000;

describe('Level compatibility', () => {
  it("passes abstract-level's conformance suite", { timeout: suiteTimeoutMs }, async () => {
    const { output, exitCode, elapsedMs } = await runSuite();
    const report = parseTap(output);
    const figure = (name: string): string =>
      new RegExp(`^level-suite ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? '?';
    console.log(
      `abstract-level suite: ${report.tests} tests, ${report.assertions} assertions, ` +
        `${report.passed} passed, ${report.failed} failed; ${(elapsedMs / 1000).toFixed(1)} s, of which ` +
        `${figure('opens')} database opens took ${figure('opening ms')} ms and closes ${figure('closing ms')} ms; ` +
        `${figure('released')} databases no test could reach were stopped as it ran, ${figure('left open')} at its end`,
    );
    for (const failure of report.failures) console.log(`failed: ${failure}`);
    expect(report.failures).toEqual([]);
    expect(report.finished).toBe(true);
    expect(exitCode).toBe(0);
    expect(report.tests).toBeGreaterThanOrEqual(testsMin);
    expect(report.assertions).toBeGreaterThanOrEqual(assertionsMin);
  });
});

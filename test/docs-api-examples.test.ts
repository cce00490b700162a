/**
 * Keeps docs/api.md's examples runnable: its ```ts blocks (one program, each block continuing the one
 * before) run for real against the sources in a child process in a fresh temporary directory, and
 * type-check against the package's types, as the README's examples do.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeFailure, runProgramExample } from './support/example-runner.js';
import { typeErrorsOf } from './support/example-types.js';
import { planExamples, readFencedBlocks } from './support/readme-blocks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const plan = planExamples(readFencedBlocks(readFileSync(join(root, 'docs/api.md'), 'utf8')));

describe('docs/api.md examples', () => {
  it('are one program of several blocks, with nothing skipped', () => {
    expect(plan.runs.length).toBe(1);
    expect(plan.runs[0]!.lines.length).toBeGreaterThan(5);
    expect(plan.skipped).toEqual([]);
  });

  for (const run of plan.runs) {
    it(`type-check and run (blocks at lines ${run.lines.join(', ')})`, async () => {
      expect(await typeErrorsOf([{ name: `api-${run.lines[0]}`, code: run.code }])).toEqual([]);
      const result = await runProgramExample(run.code, run.lang);
      expect(result.code === 0 && !result.timedOut, describeFailure(result)).toBe(true);
      expect(result.stderr, 'a failed console.assert prints to stderr').not.toContain('Assertion failed');
    });
  }
});

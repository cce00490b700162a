/**
 * Keeps the README's examples runnable. Every ```ts and ```js block runs for real against the sources,
 * in a child process whose working directory is a fresh temporary directory; a block marked
 * `<!-- example: continues -->` runs joined to the one before it, and one marked
 * `<!-- example: not runnable: <reason> -->` is listed with its reason. A block without a marker must
 * run and exit 0, and the TypeScript ones must also type-check against the package's types. Shell
 * blocks whose commands are all npm's are checked against package.json's scripts (never run: they
 * install and build); other shell blocks run with `lightning-cli` on the PATH, in a temporary
 * directory holding a small database at ./data. The examples run side by side (each in its own
 * directory and process) to keep the file's time down.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import {
  commandExists,
  describeFailure,
  runProgramExample,
  runShellExample,
} from './support/example-runner.js';
import { typeErrorsOf } from './support/example-types.js';
import {
  absolutePathsIn,
  planExamples,
  readFencedBlocks,
  scriptOfNpmCommand,
} from './support/readme-blocks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const plan = planExamples(readFencedBlocks(readFileSync(join(root, 'README.md'), 'utf8')));
const packageScripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: object })
  .scripts;

/** Tools a shell example may pipe into that are not part of this package, and whether each is installed. */
const externalTools = new Map<string, boolean>([['jq', await commandExists('jq')]]);

function missingTools(code: string): string[] {
  return [...externalTools]
    .filter(([name, found]) => !found && new RegExp(`\\|\\s*${name}\\b`).test(code))
    .map(([name]) => name);
}

/** The database the shell examples work on: a few UTF-8 keys, and binary ones for the hex scan. */
async function createSampleDatabase(work: string): Promise<void> {
  const db = await open(join(work, 'data'), { partitions: 4, workers: 1 });
  try {
    const binary = Array.from({ length: 32 }, (_, i) => ({
      type: 'put' as const,
      key: new Uint8Array([0, i]),
      value: `value ${i}`,
    }));
    await db.batch([
      ...binary,
      { type: 'put', key: 'user:1', value: 'alice' },
      { type: 'put', key: 'user:2', value: 'bob' },
    ]);
  } finally {
    await db.close();
  }
}

describe('README examples', () => {
  it('accounts for every code block: run, checked or skipped with its reason', () => {
    const skipped = plan.skipped.map((block) => `  line ${block.line} (${block.lang}): ${block.reason}`);
    console.log(
      [
        `README code blocks: ${plan.runs.length} programs run (lines ${plan.runs.map((run) => run.lines.join('+')).join(', ')}),`,
        `${plan.shellRuns.length} shell blocks run, ${plan.npmChecks.length} npm blocks checked against package.json,`,
        `${plan.other.length} blocks that are not examples (no language tag or a data format), ${plan.skipped.length} not runnable:`,
        ...skipped,
      ].join('\n'),
    );
    expect(plan.runs.length).toBeGreaterThan(0);
    for (const block of plan.skipped) expect(block.reason.length, `line ${block.line}`).toBeGreaterThan(0);
  });

  it('names only scripts that package.json has in its npm commands', () => {
    const commands = plan.npmChecks.flatMap((check) =>
      check.commands.map((command) => ({ line: check.line, command })),
    );
    expect(commands.length).toBeGreaterThan(0);
    for (const { line, command } of commands) {
      const script = scriptOfNpmCommand(command);
      if (script !== null) expect(Object.keys(packageScripts), `line ${line}: ${command}`).toContain(script);
    }
  });

  it.concurrent('type-checks the TypeScript examples against the package types', async ({ expect }) => {
    const examples = plan.runs
      .filter((run) => run.lang === 'ts')
      .map((run) => ({ name: `line-${run.lines.join('+')}`, code: run.code }));
    expect(await typeErrorsOf(examples)).toEqual([]);
  });

  for (const run of plan.runs) {
    it.concurrent(`runs the ${run.lang} example at line ${run.lines.join(' + ')}`, async ({ expect }) => {
      expect(
        absolutePathsIn(run.code, 'program'),
        'absolute paths would land outside the temporary directory',
      ).toEqual([]);
      const result = await runProgramExample(run.code, run.lang);
      expect(result.code === 0 && !result.timedOut, describeFailure(result)).toBe(true);
    });
  }

  for (const block of plan.shellRuns) {
    const missing = missingTools(block.code);
    const name = `runs the shell example at line ${block.line}`;
    if (missing.length > 0) {
      console.log(`README line ${block.line}: not run, ${missing.join(', ')} not installed`);
      it.skip(`${name} (needs ${missing.join(', ')})`, () => {});
      continue;
    }
    it.concurrent(name, async ({ expect }) => {
      expect(
        absolutePathsIn(block.code, 'shell'),
        'absolute paths would land outside the temporary directory',
      ).toEqual([]);
      const result = await runShellExample(block.code, createSampleDatabase);
      expect(result.code === 0 && !result.timedOut, describeFailure(result)).toBe(true);
    });
  }
});

describe('README example markers', () => {
  const fence = (lang: string, code: string, marker = ''): string =>
    `${marker}\n\`\`\`${lang}\n${code}\n\`\`\`\n`;

  it('joins a continuing block to the example before it, and lists a not runnable one with its reason', () => {
    const markdown =
      fence('ts', 'const a = 1;') +
      fence('ts', 'console.log(a);', '<!-- example: continues -->') +
      fence('ts', 'attach(handle);', '<!-- example: not runnable: needs an app worker -->') +
      fence('sh', 'npm install && npm test') +
      fence('', '<db>/LOCK');
    const plan = planExamples(readFencedBlocks(markdown));
    expect(plan.runs).toEqual([{ lang: 'ts', lines: [2, 6], code: 'const a = 1;\nconsole.log(a);' }]);
    expect(plan.skipped).toEqual([{ line: 10, lang: 'ts', reason: 'needs an app worker' }]);
    expect(plan.npmChecks).toEqual([{ line: 14, commands: ['npm install', 'npm test'] }]);
    expect(plan.other.map((block) => block.line)).toEqual([18]);
  });

  it('refuses a continuing block with no runnable block before it, and a marker it does not know', () => {
    const afterSkipped =
      fence('ts', 'attach(handle);', '<!-- example: not runnable: needs an app worker -->') +
      fence('ts', 'db2.get("a");', '<!-- example: continues -->');
    expect(() => planExamples(readFencedBlocks(afterSkipped))).toThrow(/does not run/);
    expect(() => readFencedBlocks(fence('ts', 'x;', '<!-- example: skip -->'))).toThrow(
      /unknown example marker/,
    );
    expect(() => readFencedBlocks(fence('ts', 'x;', '<!-- example: not runnable -->'))).toThrow(/unknown/);
  });

  it('finds the absolute paths an example names outside its comments', () => {
    expect(absolutePathsIn("await db.backup('/backups/x'); // see /metrics", 'program')).toEqual([
      '/backups/x',
    ]);
    expect(absolutePathsIn("fetch('http://127.0.0.1:9464/metrics'); open('./data');", 'program')).toEqual([]);
    expect(absolutePathsIn('lightning-cli backup ./data /backups/today   # not /here', 'shell')).toEqual([
      '/backups/today',
    ]);
  });
});

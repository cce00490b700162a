/**
 * Keeps the documentation's examples runnable: README.md's and those of every docs/*.md file. Every
 * ```ts and ```js block runs for real against the sources, in a child process whose working directory
 * is a fresh temporary directory; a block marked `<!-- example: continues -->` runs joined to the one
 * before it, and one marked `<!-- example: not runnable: <reason> -->` is listed with its reason. A
 * block without a marker must run and exit 0, and the TypeScript ones must also type-check against the
 * package's types. Shell blocks whose commands are all npm's are checked against package.json's scripts
 * (never run: they install and build); other shell blocks run with `lightning-cli` on the PATH, in a
 * temporary directory holding a small database at ./data. A block marked `<!-- example: nats cluster -->`
 * (a replication example) runs with LIGHTNING_NATS_SERVERS set to the URLs of a 3-node JetStream
 * cluster on 127.0.0.1 that this file starts for them, once. The examples run side by side (each in its
 * own directory and process) to keep the file's time down. Every relative link of these files must
 * name a file of the repository, and a heading of it when it names one.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../src/index.js';
import {
  commandExists,
  describeFailure,
  programFromExample,
  runProgramExample,
  runShellExample,
} from './support/example-runner.js';
import { typeErrorsOf } from './support/example-types.js';
import { NatsCluster } from './support/nats-cluster.js';
import {
  absolutePathsIn,
  type ExampleRun,
  headingSlugs,
  planExamples,
  readFencedBlocks,
  relativeLinksIn,
  scriptOfNpmCommand,
} from './support/readme-blocks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
/** README.md first, then the docs/ pages in name order. */
const documents = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];
const markdownOf = new Map(documents.map((path) => [path, readFileSync(join(root, path), 'utf8')]));
const plans = documents.map((path) => ({
  path,
  plan: planExamples(readFencedBlocks(markdownOf.get(path)!)),
}));
const packageScripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: object })
  .scripts;

/**
 * What the README's quick start prints: the main thread's reads and range, then the app worker's read
 * of the main thread's write, then the main thread's read of the worker's write, so a quick start
 * whose worker never attached or never wrote fails here.
 */
const quickStartOutput = 'alice\nuser:1 = alice\nuser:2 = bob\nalice\ncarol\n';
/**
 * A guard against a hang, not a speed bound: all examples run at once, and on a heavily loaded 2-core
 * machine each can take minutes. Above the runner's own limit, so a hang reports the example's output.
 */
const exampleTestTimeoutMs = 300_000;

/**
 * Examples marked `nats cluster` (the replication ones) run against a real 3-node JetStream cluster
 * on 127.0.0.1, started once for them when the first one runs; they read its URLs from this variable
 * (and fall back to a cluster of the user's own on the default ports).
 */
const natsVariable = 'LIGHTNING_NATS_SERVERS';
let natsCluster: Promise<NatsCluster> | undefined;
afterAll(async () => {
  await (await natsCluster)?.close();
});

async function environmentFor(run: ExampleRun): Promise<NodeJS.ProcessEnv> {
  if (!run.natsCluster) return process.env;
  natsCluster ??= NatsCluster.start();
  return { ...process.env, [natsVariable]: (await natsCluster).servers.join(',') };
}

const isQuickStart = (path: string, code: string): boolean =>
  path === 'README.md' && code.includes('attach(workerData)');

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

describe('documentation examples', () => {
  it('accounts for every code block: run, checked or skipped with its reason', () => {
    for (const { path, plan } of plans) {
      const skipped = plan.skipped.map((block) => `  line ${block.line} (${block.lang}): ${block.reason}`);
      console.log(
        [
          `${path}: ${plan.runs.length} programs run (lines ${plan.runs.map((run) => run.lines.join('+')).join(', ')}),`,
          `${plan.shellRuns.length} shell blocks run, ${plan.npmChecks.length} npm blocks checked against package.json,`,
          `${plan.other.length} blocks that are not examples (no language tag or a data format), ${plan.skipped.length} not runnable:`,
          ...skipped,
        ].join('\n'),
      );
      for (const block of plan.skipped)
        expect(block.reason.length, `${path} line ${block.line}`).toBeGreaterThan(0);
    }
    expect(plans.find(({ path }) => path === 'README.md')!.plan.runs.length).toBeGreaterThan(0);
  });

  it(`gives a NATS cluster to the examples marked for one, which read ${natsVariable}, and only to them`, () => {
    for (const { path, plan } of plans) {
      for (const run of plan.runs) {
        const where = `${path} line ${run.lines.join('+')}`;
        const reads = run.code.includes(natsVariable);
        expect(reads, `${where}: reads ${natsVariable} exactly when marked nats cluster`).toBe(
          run.natsCluster,
        );
      }
    }
    expect(plans.find(({ path }) => path === 'README.md')!.plan.runs.some((run) => run.natsCluster)).toBe(
      true,
    );
  });

  it("runs the README's quick start, whose app worker attaches", () => {
    const readme = plans.find(({ path }) => path === 'README.md')!.plan;
    expect(readme.runs.filter((run) => isQuickStart('README.md', run.code))).toHaveLength(1);
  });

  it("lists every error code in the README's error table, and no other", () => {
    const errorsSource = readFileSync(join(root, 'src/shared-memory/errors.ts'), 'utf8');
    const union = /export type LightningErrorCode =([^;]*);/.exec(errorsSource)?.[1] ?? '';
    const codes = [...union.matchAll(/'(ERR_[A-Z_]+)'/g)].map((match) => match[1]);
    const listed = [...markdownOf.get('README.md')!.matchAll(/^\| `(ERR_[A-Z_]+)`/gm)].map(
      (match) => match[1],
    );
    expect(codes.length).toBeGreaterThan(0);
    expect([...listed].sort()).toEqual([...codes].sort());
  });

  it('names only scripts that package.json has in its npm commands', () => {
    const commands = plans.flatMap(({ path, plan }) =>
      plan.npmChecks.flatMap((check) =>
        check.commands.map((command) => ({ path, line: check.line, command })),
      ),
    );
    expect(commands.length).toBeGreaterThan(0);
    for (const { path, line, command } of commands) {
      const script = scriptOfNpmCommand(command);
      if (script !== null)
        expect(Object.keys(packageScripts), `${path} line ${line}: ${command}`).toContain(script);
    }
  });

  it('links only to files of the repository, and to headings they have', () => {
    const links = documents.flatMap((path) =>
      relativeLinksIn(markdownOf.get(path)!).map((link) => ({ path, ...link })),
    );
    expect(links.length).toBeGreaterThan(0);
    for (const { path, line, target, anchor } of links) {
      const where = `${path} line ${line}: ${target}${anchor === null ? '' : `#${anchor}`}`;
      const file = target === '' ? join(root, path) : join(root, dirname(path), target);
      expect(relative(root, file).startsWith('..'), `${where} leaves the repository`).toBe(false);
      expect(existsSync(file), `${where}: no such file`).toBe(true);
      if (anchor !== null) expect(headingSlugs(readFileSync(file, 'utf8')), where).toContain(anchor);
    }
  });

  it.concurrent(
    'type-checks the TypeScript examples against the package types',
    async ({ expect }) => {
      const examples = plans.flatMap(({ path, plan }) =>
        plan.runs
          .filter((run) => run.lang === 'ts')
          .map((run) => ({
            name: `${path.replace(/\W+/g, '-')}-line-${run.lines.join('+')}`,
            code: run.code,
          })),
      );
      expect(await typeErrorsOf(examples)).toEqual([]);
    },
    exampleTestTimeoutMs,
  );

  for (const { path, plan } of plans) {
    for (const run of plan.runs) {
      it.concurrent(
        `runs the ${run.lang} example of ${path} at line ${run.lines.join(' + ')}`,
        async ({ expect }) => {
          expect(
            absolutePathsIn(run.code, 'program'),
            'absolute paths would land outside the temporary directory',
          ).toEqual([]);
          const result = await runProgramExample(run.code, run.lang, await environmentFor(run));
          expect(result.code === 0 && !result.timedOut, describeFailure(result)).toBe(true);
          if (isQuickStart(path, run.code)) expect(result.stdout).toBe(quickStartOutput);
        },
        exampleTestTimeoutMs,
      );
    }

    for (const block of plan.shellRuns) {
      const missing = missingTools(block.code);
      const name = `runs the shell example of ${path} at line ${block.line}`;
      if (missing.length > 0) {
        console.log(`${path} line ${block.line}: not run, ${missing.join(', ')} not installed`);
        it.skip(`${name} (needs ${missing.join(', ')})`, () => {});
        continue;
      }
      it.concurrent(
        name,
        async ({ expect }) => {
          expect(
            absolutePathsIn(block.code, 'shell'),
            'absolute paths would land outside the temporary directory',
          ).toEqual([]);
          const result = await runShellExample(block.code, createSampleDatabase);
          expect(result.code === 0 && !result.timedOut, describeFailure(result)).toBe(true);
        },
        exampleTestTimeoutMs,
      );
    }
  }
});

describe('documentation example markers and links', () => {
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
    expect(plan.runs).toEqual([
      { lang: 'ts', lines: [2, 6], code: 'const a = 1;\nconsole.log(a);', natsCluster: false },
    ]);
    expect(plan.skipped).toEqual([{ line: 10, lang: 'ts', reason: 'needs an app worker' }]);
    expect(plan.npmChecks).toEqual([{ line: 14, commands: ['npm install', 'npm test'] }]);
    expect(plan.other.map((block) => block.line)).toEqual([18]);
  });

  it('marks an example that needs a NATS cluster, with the blocks that continue it; never a shell block', () => {
    const markdown =
      fence('ts', 'const servers = process.env.X;', '<!-- example: nats cluster -->') +
      fence('ts', 'console.log(servers);', '<!-- example: continues -->') +
      fence('ts', 'const b = 2;');
    expect(planExamples(readFencedBlocks(markdown)).runs).toEqual([
      {
        lang: 'ts',
        lines: [2, 6],
        code: 'const servers = process.env.X;\nconsole.log(servers);',
        natsCluster: true,
      },
      { lang: 'ts', lines: [10], code: 'const b = 2;', natsCluster: false },
    ]);
    expect(() =>
      planExamples(readFencedBlocks(fence('sh', 'nats-server -js', '<!-- example: nats cluster -->'))),
    ).toThrow(/only program examples/);
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

  it('finds relative links outside code blocks, and the anchors of headings', () => {
    const markdown = [
      'See [the docs](docs/a.md), [a part](docs/a.md#the-part), [here](#errors) and [a site](https://example.com).',
      '```sh',
      'echo "[not](a-link.md)"',
      '```',
      '## Worker placement (NUMA)',
      '## Errors',
    ].join('\n');
    expect(relativeLinksIn(markdown)).toEqual([
      { line: 1, target: 'docs/a.md', anchor: null },
      { line: 1, target: 'docs/a.md', anchor: 'the-part' },
      { line: 1, target: '', anchor: 'errors' },
    ]);
    expect(headingSlugs(markdown)).toEqual(['worker-placement-numa', 'errors']);
  });

  it('runs imports of the package and of its subpaths from the sources, and admin servers on any port', () => {
    const program = programFromExample(
      'import { open } from \'lightning-db\';\nimport { BTree } from "lightning-db/internals";\nawait db.serveAdmin({ port: 9464 });',
    );
    expect(program).toContain(JSON.stringify(pathToFileURL(join(root, 'src/index.ts')).href));
    expect(program).toContain(JSON.stringify(pathToFileURL(join(root, 'src/internals.ts')).href));
    expect(program).toContain('port: 0');
    expect(program).not.toContain("'lightning-db");
  });
});

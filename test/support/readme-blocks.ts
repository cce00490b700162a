/**
 * Reads the fenced code blocks of a Markdown file and sorts them into what a test can do with each:
 * TypeScript and JavaScript examples to run (a block marked `<!-- example: continues -->` on the line
 * before its fence runs joined to the example before it; one marked `<!-- example: nats cluster -->`
 * runs with a NATS JetStream cluster to talk to), shell blocks to run or to check, and blocks marked
 * `<!-- example: not runnable: <reason> -->`, which are only listed with their reason.
 */

/** One fenced block: its language tag ('' when none), its text and where it starts. */
export interface FencedBlock {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  marker: BlockMarker | null;
}

export type BlockMarker =
  | { kind: 'continues' }
  | { kind: 'nats-cluster' }
  | { kind: 'not-runnable'; reason: string };

/** Blocks run as one program: an example and the blocks that continue it, joined in order. */
export interface ExampleRun {
  lang: 'ts' | 'js';
  lines: number[];
  code: string;
  /** Marked `nats cluster`: it needs NATS servers with JetStream (a replication example). */
  natsCluster: boolean;
}

/** A shell block whose commands are all `npm ...`: checked against package.json's scripts, not run. */
export interface NpmCheck {
  line: number;
  commands: string[];
}

export interface SkippedBlock {
  line: number;
  lang: string;
  reason: string;
}

export interface ExamplePlan {
  runs: ExampleRun[];
  shellRuns: FencedBlock[];
  npmChecks: NpmCheck[];
  skipped: SkippedBlock[];
  /** Blocks in a language that is not code to run (no tag, yaml, ...): not examples, only counted. */
  other: FencedBlock[];
}

const fencePattern = /^```(\S*)\s*$/;
const markerPattern = /^<!--\s*example:\s*(.*?)\s*-->$/;
const runnableLangs = new Set(['ts', 'typescript', 'js', 'javascript']);
const shellLangs = new Set(['sh', 'bash', 'shell']);

export function readFencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = fencePattern.exec(lines[i] ?? '');
    if (open === null) continue;
    const body: string[] = [];
    let end = i + 1;
    while (end < lines.length && (lines[end] ?? '').trimEnd() !== '```') body.push(lines[end++] ?? '');
    if (end === lines.length) throw new Error(`line ${i + 1}: a code block that is never closed`);
    blocks.push({
      line: i + 1,
      lang: open[1] ?? '',
      code: body.join('\n'),
      marker: parseMarker(lines[i - 1], i),
    });
    i = end;
  }
  return blocks;
}

/** The marker on the line right before a fence, if any; a comment that looks like one but is not is an error. */
function parseMarker(previous: string | undefined, fenceIndex: number): BlockMarker | null {
  const match = markerPattern.exec((previous ?? '').trim());
  if (match === null) {
    if ((previous ?? '').includes('example:'))
      throw new Error(`line ${fenceIndex}: a malformed example marker`);
    return null;
  }
  const text = match[1] ?? '';
  if (text === 'continues') return { kind: 'continues' };
  if (text === 'nats cluster') return { kind: 'nats-cluster' };
  const notRunnable = /^not runnable:\s*(\S.*)$/.exec(text);
  if (notRunnable !== null) return { kind: 'not-runnable', reason: notRunnable[1] ?? '' };
  throw new Error(`line ${fenceIndex}: unknown example marker "${text}"`);
}

export function planExamples(blocks: readonly FencedBlock[]): ExamplePlan {
  const plan: ExamplePlan = { runs: [], shellRuns: [], npmChecks: [], skipped: [], other: [] };
  // The run a `continues` block joins: the last TypeScript or JavaScript block, if it ran.
  let lastRun: ExampleRun | null = null;
  for (const block of blocks) {
    const isCode = runnableLangs.has(block.lang);
    const isShell = shellLangs.has(block.lang);
    if (!isCode && !isShell) {
      if (block.marker !== null)
        throw new Error(`line ${block.line}: a marker on a block that is not an example`);
      plan.other.push(block);
      continue;
    }
    if (block.marker?.kind === 'not-runnable') {
      plan.skipped.push({ line: block.line, lang: block.lang, reason: block.marker.reason });
      if (isCode) lastRun = null;
      continue;
    }
    if (isShell) {
      if (block.marker?.kind === 'continues')
        throw new Error(`line ${block.line}: shell blocks cannot continue`);
      if (block.marker?.kind === 'nats-cluster')
        throw new Error(`line ${block.line}: only program examples get a NATS cluster`);
      const commands = shellCommands(block.code);
      if (commands.length > 0 && commands.every((command) => command.startsWith('npm '))) {
        plan.npmChecks.push({ line: block.line, commands });
      } else {
        plan.shellRuns.push(block);
      }
      continue;
    }
    const lang = block.lang.startsWith('t') ? 'ts' : 'js';
    if (block.marker?.kind === 'continues') {
      if (lastRun === null) {
        throw new Error(`line ${block.line}: marked as continuing, but the block before it does not run`);
      }
      if (lastRun.lang !== lang) throw new Error(`line ${block.line}: continues a block in another language`);
      lastRun.lines.push(block.line);
      lastRun.code += `\n${block.code}`;
      continue;
    }
    lastRun = {
      lang,
      lines: [block.line],
      code: block.code,
      natsCluster: block.marker?.kind === 'nats-cluster',
    };
    plan.runs.push(lastRun);
  }
  return plan;
}

/** A shell block's commands, one per `&&`-separated part of each line, comments removed. */
export function shellCommands(code: string): string[] {
  return code
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter((line) => line !== '')
    .flatMap((line) => line.split('&&').map((part) => part.trim()));
}

/**
 * The package.json script an npm command runs, or null for npm's own commands (`npm install`).
 * `npm start` and `npm test` run the scripts of those names; `npm run <name> ...` runs `<name>`.
 */
export function scriptOfNpmCommand(command: string): string | null {
  const words = command.split(/\s+/);
  const verb = words[1] ?? '';
  if (verb === 'install' || verb === 'ci') return null;
  if (verb === 'start' || verb === 'test') return verb;
  if (verb === 'run' && words[2] !== undefined) return words[2];
  throw new Error(`an npm command the README check does not know: ${command}`);
}

/**
 * Absolute paths an example names (string literals in a program, words in a shell block; comments
 * left out). An example runs in a temporary directory only if all its paths are relative, so one
 * that names '/backups/...' would write outside it: the test refuses to run it.
 */
export function absolutePathsIn(code: string, kind: 'program' | 'shell'): string[] {
  const withoutComments = code
    .split('\n')
    .map((line) => line.replace(kind === 'program' ? /(^|\s)\/\/.*$/ : /(^|\s)#.*$/, ''))
    .join('\n');
  const pattern = kind === 'program' ? /(['"`])(\/[^'"`]*)\1/g : /(^|\s)(\/\S*)/g;
  return [...withoutComments.matchAll(pattern)].map((match) => match[2] ?? '');
}

/** A relative link of a Markdown file: the path it names ('' for a heading of the same file) and its anchor. */
export interface RelativeLink {
  line: number;
  target: string;
  anchor: string | null;
}

const linkPattern = /\]\(([^()\s]*)\)/g;

/** Every `[text](target)` outside code blocks whose target is not a URL with a scheme (http:, mailto:...). */
export function relativeLinksIn(markdown: string): RelativeLink[] {
  const links: RelativeLink[] = [];
  let inFence = false;
  markdown.split('\n').forEach((text, index) => {
    if (fencePattern.test(text.trimEnd()) || (inFence && text.trimEnd() === '```')) {
      inFence = !inFence;
      return;
    }
    if (inFence) return;
    for (const match of text.matchAll(linkPattern)) {
      const href = match[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(href)) continue;
      const hash = href.indexOf('#');
      links.push({
        line: index + 1,
        target: hash < 0 ? href : href.slice(0, hash),
        anchor: hash < 0 ? null : href.slice(hash + 1),
      });
    }
  });
  return links;
}

/**
 * The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces turned
 * into hyphens (a repeated heading's later anchors, which get a numeric suffix, are not listed).
 */
export function headingSlugs(markdown: string): string[] {
  const slugs: string[] = [];
  let inFence = false;
  for (const text of markdown.split('\n')) {
    if (fencePattern.test(text.trimEnd()) || (inFence && text.trimEnd() === '```')) {
      inFence = !inFence;
      continue;
    }
    const heading = /^#{1,6}\s+(.*?)\s*$/.exec(text);
    if (inFence || heading === null) continue;
    slugs.push(
      (heading[1] ?? '')
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return slugs;
}

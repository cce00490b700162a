/**
 * Type-checks README examples against the package's sources with the project's compiler options, so
 * an example that misnames an option or a field fails even where JavaScript would ignore the mistake
 * at run time. Unused names are allowed: examples show calls whose results they do not use.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { packageSpecifierPattern, sourceEntryOf } from './example-runner.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface TypedExample {
  /** Names the example in the messages, e.g. 'line-20'. */
  name: string;
  code: string;
}

/** Every compiler diagnostic, as `example-<name>.mts:<line>: <message>` and the line's text. */
export async function typeErrorsOf(examples: readonly TypedExample[]): Promise<string[]> {
  const scratch = await mkdtemp(join(tmpdir(), 'lightning-readme-types-'));
  try {
    const files: string[] = [];
    for (const example of examples) {
      const file = join(scratch, `example-${example.name}.mts`);
      const code = example.code.replace(
        packageSpecifierPattern,
        (_match, _quote, subpath: string | undefined) => JSON.stringify(sourceEntryOf(subpath, '.js')),
      );
      await writeFile(file, code);
      files.push(file);
    }
    // The declarations the sources rely on (modules without types of their own).
    const typesDir = join(root, 'src/types');
    for (const name of await readdir(typesDir)) if (name.endsWith('.d.ts')) files.push(join(typesDir, name));
    const program = ts.createProgram(files, compilerOptions());
    return ts.getPreEmitDiagnostics(program).map(describeDiagnostic);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function compilerOptions(): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configPath);
  // The examples lie outside the project (in a temporary directory) and nothing is emitted.
  const { rootDir: _rootDir, outDir: _outDir, declaration: _declaration, ...options } = parsed.options;
  return { ...options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false };
}

function describeDiagnostic(diagnostic: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
  if (diagnostic.file === undefined || diagnostic.start === undefined) return message;
  const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  const text = diagnostic.file.text.split('\n')[line]?.trim() ?? '';
  return `${diagnostic.file.fileName.split('/').pop()}:${line + 1}: ${message}\n    ${text}`;
}

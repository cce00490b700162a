/**
 * The text formats of `load` and `dump`, without processes: CSV written with csvCell splits back into
 * the same fields and line numbers whatever the chunk sizes it arrives in, and a JSON line written
 * for any bytes parses back to the same bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entryEncodings } from '../src/main/cli/byte-encoding.js';
import { CsvRecordSplitter } from '../src/main/cli/csv-records.js';
import { csvCell, jsonLine, parseJsonLine } from '../src/main/cli/entry-format.js';
import { seedFromEnv } from './support/seeded-random.js';

const seed = seedFromEnv(0xc57);

/** Feeds `text` in pieces cut at `cuts` (positions, any order), then finishes. */
function splitInChunks(text: string, cuts: readonly number[]) {
  const splitter = new CsvRecordSplitter();
  const positions = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b);
  const records = [];
  let from = 0;
  for (const position of [...positions, text.length]) {
    records.push(...splitter.push(text.slice(from, position)));
    from = position;
  }
  records.push(...splitter.finish());
  return records;
}

describe('CSV records', () => {
  it('split back into the fields written, with the line each starts on, across any chunking', () => {
    const field = fc.string({
      unit: fc.constantFrom('a', 'é', ',', '"', '\n', '\r', ' ', '🚀'),
      maxLength: 6,
    });
    // A record of one empty field is a blank line, which the splitter skips.
    const record = fc
      .array(field, { minLength: 1, maxLength: 4 })
      .filter((fields) => fields.length > 1 || fields[0] !== '');
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 6 }),
        (records, crlf, finalBreak, cuts) => {
          const lineBreak = crlf ? '\r\n' : '\n';
          const lines = records.map((fields) => fields.map(csvCell).join(','));
          const text = lines.join(lineBreak) + (finalBreak ? lineBreak : '');
          let line = 1;
          const expected = records.map((fields, index) => {
            const start = line;
            line += lines[index]!.split('\n').length;
            return { line: start, fields };
          });
          expect(splitInChunks(text, cuts)).toEqual(expected);
        },
      ),
      { seed, numRuns: 300 },
    );
  });

  it('reports malformed records at the line they start on', () => {
    const text = 'a,b\n"x\ny",z\n"bad"q,1\nc,d"e\n"open,2\n';
    expect(splitInChunks(text, [5, 9])).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x\ny', 'z'] },
      { line: 4, error: 'unexpected "q" after a closing quote' },
      { line: 5, error: 'a quote inside an unquoted field (quote the whole field and double the quote)' },
    ]);
    expect(splitInChunks('k,v\n"never closed\n', [])).toEqual([
      { line: 1, fields: ['k', 'v'] },
      { line: 2, error: 'a quoted field is not closed before the end of the input' },
    ]);
  });
});

describe('JSON lines', () => {
  it('parse back to the bytes written, in every encoding, valid UTF-8 or not', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          fc.string().map((text) => Buffer.from(text)),
        ),
        fc.constantFrom('utf8', 'hex', 'base64' as const),
        fc.boolean(),
        (key, value, written, readAsWritten) => {
          const line = jsonLine(key, value, entryEncodings({ encoding: written }));
          expect(line).not.toContain('\n');
          // Fields not in UTF-8 are marked, so a reader with the default (UTF-8) reads any line; an
          // unmarked field is read in the reader's encoding, so one with the writer's reads it too.
          const read = readAsWritten ? written : 'utf8';
          const parsed = parseJsonLine(line, entryEncodings({ encoding: read }));
          expect(parsed.key.equals(Buffer.from(key))).toBe(true);
          expect(parsed.value.equals(Buffer.from(value))).toBe(true);
        },
      ),
      { seed, numRuns: 500 },
    );
  });
});

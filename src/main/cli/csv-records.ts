/**
 * Splits CSV text (RFC 4180: comma-separated, fields optionally in double quotes with quotes doubled
 * inside, CRLF or LF line ends) into records, fed in chunks of any size. Each record carries the
 * line it starts on, because a quoted field may span lines and an error must point at its start.
 */

export type CsvRecord =
  | { readonly line: number; readonly fields: string[]; readonly error?: undefined }
  | { readonly line: number; readonly error: string };

export class CsvRecordSplitter {
  /** Text not yet part of a complete record. */
  #pending = '';
  /** How far into #pending newlines have been looked at, and the quote parity up to there. */
  #scanned = 0;
  #insideQuotes = false;
  /** The line #pending starts on; lines are counted from 1. */
  #line = 1;
  /** Line breaks inside the record still open, counted into #line when it completes. */
  #linesInRecord = 0;

  /** The records completed by `chunk` (a record is complete at a line end outside quotes). */
  push(chunk: string): CsvRecord[] {
    this.#pending += chunk;
    const records: CsvRecord[] = [];
    let start = 0;
    let at = this.#scanned;
    // The next quote at or after `at`, found once and kept while `at` is before it: searching again
    // for every line would rescan a quote-free chunk once per line.
    let quote = this.#pending.indexOf('"', at);
    for (;;) {
      if (quote !== -1 && quote < at) quote = this.#pending.indexOf('"', at);
      const newline = this.#pending.indexOf('\n', at);
      if (newline === -1) {
        for (; quote !== -1; quote = this.#pending.indexOf('"', quote + 1))
          this.#insideQuotes = !this.#insideQuotes;
        at = this.#pending.length;
        break;
      }
      if (quote !== -1 && quote < newline) {
        this.#insideQuotes = !this.#insideQuotes;
        at = quote + 1;
        continue;
      }
      this.#linesInRecord++;
      at = newline + 1;
      if (this.#insideQuotes) continue;
      const text = this.#pending.slice(start, newline);
      const record = parseRecord(text.endsWith('\r') ? text.slice(0, -1) : text, this.#line);
      if (record !== null) records.push(record);
      this.#line += this.#linesInRecord;
      this.#linesInRecord = 0;
      start = at;
    }
    this.#pending = this.#pending.slice(start);
    this.#scanned = at - start;
    return records;
  }

  /** The last record, when the text does not end with a line break. */
  finish(): CsvRecord[] {
    const text = this.#pending;
    this.#pending = '';
    this.#scanned = 0;
    if (this.#insideQuotes) {
      this.#insideQuotes = false;
      return [{ line: this.#line, error: 'a quoted field is not closed before the end of the input' }];
    }
    const record = parseRecord(text.endsWith('\r') ? text.slice(0, -1) : text, this.#line);
    return record === null ? [] : [record];
  }
}

/** The fields of one record's text (line breaks inside quotes included); null for a blank line. */
export function parseRecord(text: string, line: number): CsvRecord | null {
  if (text === '') return null;
  const fields: string[] = [];
  let at = 0;
  for (;;) {
    if (text[at] === '"') {
      let value = '';
      let from = at + 1;
      for (;;) {
        const quote = text.indexOf('"', from);
        if (quote === -1) return { line, error: 'a quoted field is not closed' };
        value += text.slice(from, quote);
        if (text[quote + 1] === '"') {
          value += '"';
          from = quote + 2;
          continue;
        }
        at = quote + 1;
        break;
      }
      fields.push(value);
      if (at === text.length) return { line, fields };
      if (text[at] !== ',') {
        return { line, error: `unexpected ${JSON.stringify(text[at])} after a closing quote` };
      }
      at++;
    } else {
      // An unquoted field runs to the next comma. A quote inside one is refused rather than taken
      // literally: the splitter pairs every quote to find where records end, so it would not agree.
      const comma = text.indexOf(',', at);
      const field = comma === -1 ? text.slice(at) : text.slice(at, comma);
      if (field.includes('"')) {
        return {
          line,
          error: 'a quote inside an unquoted field (quote the whole field and double the quote)',
        };
      }
      fields.push(field);
      if (comma === -1) return { line, fields };
      at = comma + 1;
    }
    if (at === text.length) {
      fields.push('');
      return { line, fields };
    }
  }
}

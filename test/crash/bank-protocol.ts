/**
 * What the bank crash child (bank-child.ts) and its parent share: the database shape, the fail-points,
 * and the report lines the child writes on file descriptor 3, one per event.
 *
 *   O                       opening the database (recovery runs now)
 *   R                       open: transfers start
 *   I <n> <from> <to> <amt> transfer n is about to be issued (its record is xfer:g<gen>:<n>)
 *   A <n> <moved>           transfer n committed, moving <moved>
 *   X <n> <error>           transfer n was rejected
 *   F <message>             the child failed
 */
export const bankPartitions = 16;
export const failpointNames = ['tx.after-prepare', 'tx.after-decision'] as const;
export type BankFailpoint = (typeof failpointNames)[number];

export type BankLine =
  | { kind: 'O' }
  | { kind: 'R' }
  | { kind: 'I'; n: number; from: number; to: number; amount: number }
  | { kind: 'A'; n: number; moved: number }
  | { kind: 'X'; n: number; error: string }
  | { kind: 'F'; message: string };

/** Parses one report line; null for anything malformed (which the parent reports). */
export function parseBankLine(line: string): BankLine | null {
  const [tag, ...fields] = line.split(' ');
  const numbers = fields.map(Number);
  const allNumbers = (count: number): boolean =>
    numbers.length === count && numbers.every((value) => Number.isSafeInteger(value) && value >= 0);
  switch (tag) {
    case 'O':
    case 'R':
      return fields.length === 0 ? { kind: tag } : null;
    case 'I':
      return allNumbers(4)
        ? { kind: 'I', n: numbers[0]!, from: numbers[1]!, to: numbers[2]!, amount: numbers[3]! }
        : null;
    case 'A':
      return allNumbers(2) ? { kind: 'A', n: numbers[0]!, moved: numbers[1]! } : null;
    case 'X':
      return fields.length >= 2 && Number.isSafeInteger(numbers[0])
        ? { kind: 'X', n: numbers[0]!, error: fields.slice(1).join(' ') }
        : null;
    case 'F':
      return { kind: 'F', message: fields.join(' ') };
    default:
      return null;
  }
}

/**
 * Compile-time checks of the typed API, run by the typecheck (`tsc -p tsconfig.json`), never executed:
 * each `@ts-expect-error` line must be an error (tsc fails if it is not), and the other lines must
 * type-check. They prove that open<K, V>() types flow to get, put, del, getMany, range, keys, values,
 * batch, transaction, snapshot and attach, that the default stays bytes-in, Buffer-out, and that an
 * encoding that does not fit the declared type is refused.
 */
import { attach, type Database, type DatabaseHandle, open } from '../../src/index.js';

interface User {
  name: string;
  age: number;
}

const expectType = <T>(_value: T): void => {};

export async function typedDatabase(): Promise<void> {
  const db = await open<string, User>('./data', { keyEncoding: 'utf8', valueEncoding: 'json' });
  await db.put('u1', { name: 'ada', age: 36 });
  // @ts-expect-error a value must be a User
  await db.put('u1', 'ada');
  // @ts-expect-error a key must be a string
  await db.put(1, { name: 'ada', age: 36 });
  // @ts-expect-error ifValue is a User too
  await db.put('u1', { name: 'ada', age: 37 }, { ifValue: 'x' });
  await db.put('u1', { name: 'ada', age: 37 }, { ifValue: { name: 'ada', age: 36 } });
  await db.del('u1', { ifValue: null });
  expectType<User | undefined>(db.get('u1'));
  // @ts-expect-error get returns a User, not a Buffer
  expectType<Buffer | undefined>(db.get('u1'));
  expectType<string | undefined>(db.getString('u1'));
  expectType<(User | undefined)[]>(db.getMany(['u1', 'u2']));
  for (const [key, user] of db.range({ gte: 'u', lt: 'v' })) expectType<[string, number]>([key, user.age]);
  // @ts-expect-error bounds are keys: strings
  db.range({ gte: 1 });
  for await (const key of db.keys({ prefix: 'u' })) expectType<string>(key);
  for (const user of db.values()) expectType<number>(user.age);
  expectType<number>(db.count({ gt: 'a' }));
  expectType<Promise<number>>(db.clear({ lt: 'z' }));
  await db.batch([
    { type: 'put', key: 'u2', value: { name: 'bob', age: 7 } },
    { type: 'del', key: 'u3' },
  ]);
  // @ts-expect-error a batch's values are Users
  await db.batch([{ type: 'put', key: 'u2', value: Buffer.from('x') }]);
  const age = await db.transaction((tx) => {
    const user = tx.get('u2');
    tx.put('u3', { name: 'cy', age: (user?.age ?? 0) + 1 });
    // @ts-expect-error a transaction's values are Users
    tx.put('u4', 'x');
    for (const [key, value] of tx.range({ prefix: 'u' })) expectType<[string, User]>([key, value]);
    return user?.age;
  });
  expectType<number | undefined>(age);
  const snapshot = db.snapshot();
  expectType<User | undefined>(snapshot.get('u1'));
  for (const [key, value] of snapshot.range()) expectType<[string, User]>([key, value]);
  snapshot.release();

  const handle: DatabaseHandle = db.share();
  const attached = await attach<string, User>(handle);
  expectType<User | undefined>(attached.get('u1'));
  expectType<Database<string, User>>(attached);
}

export async function defaultDatabase(): Promise<void> {
  const db = await open('./data', { partitions: 2 });
  await db.put('k', 'v');
  await db.put(Buffer.from('k'), new Uint8Array([1]));
  expectType<Buffer | undefined>(db.get('k'));
  expectType<(Buffer | undefined)[]>(db.getMany(['k', Buffer.from('j')]));
  for (const [key, value] of db.range()) expectType<[Buffer, Buffer]>([key, value]);
  for (const key of db.keys()) expectType<Buffer>(key);
  // The default database is the Database type of before: existing helper types still name it.
  const same: Database = db;
  type Opened = Awaited<ReturnType<typeof open>>;
  const opened: Opened = same;
  expectType<Database>(opened);
  // @ts-expect-error with the types left at the default (bytes), only 'binary' is accepted: name the types
  await open('./data', { valueEncoding: 'json' });
  // @ts-expect-error the same for keys
  await open('./data', { keyEncoding: 'utf8' });
  await open('./data', { keyEncoding: 'binary' });
}

export async function encodingsMustFitTheTypes(): Promise<void> {
  // @ts-expect-error utf8 is for strings
  await open<number, string>('./data', { keyEncoding: 'utf8' });
  // @ts-expect-error binary is for bytes
  await open<string, string>('./data', { valueEncoding: 'binary' });
  await open<Buffer, unknown>('./data', { keyEncoding: 'binary', valueEncoding: 'msgpack' });
  const byNumber = {
    encode: (n: number) => {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(n);
      return bytes;
    },
    decode: (bytes: Buffer) => bytes.readUInt32BE(0),
  };
  const db = await open<number, string>('./data', { keyEncoding: byNumber, valueEncoding: 'utf8' });
  expectType<string | undefined>(db.get(7));
  for (const [key] of db.range({ gte: 1, lt: 10 })) expectType<number>(key);
  // @ts-expect-error a custom encoding of numbers does not fit string keys
  await open<string, string>('./data', { keyEncoding: byNumber });
  // A custom encoding passes to attach(), where it cannot travel in the handle.
  await attach<number, string>(db.share(), { keyEncoding: byNumber });
}

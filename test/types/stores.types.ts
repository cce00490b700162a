/**
 * Compile-time checks of typed named stores, run by the typecheck (`tsc -p tsconfig.json`), never
 * executed: each `@ts-expect-error` line must be an error, and the other lines must type-check. They
 * prove that db.store<K, V>() types flow to the store's get, put, del, getMany, range, keys, values,
 * count, clear, batch, and to its views in a transaction and a snapshot; that a store keeps bytes in,
 * Buffers out by default; and that a batch of the database takes operations on stores of other types.
 */
import { open, type Store } from '../../src/index.js';

interface User {
  name: string;
  age: number;
}

const expectType = <T>(_value: T): void => {};

export async function typedStore(): Promise<void> {
  const db = await open('./data');
  const users = await db.store<string, User>('users', { keyEncoding: 'utf8', valueEncoding: 'json' });
  expectType<Store<string, User>>(users);
  await users.put('u1', { name: 'ada', age: 36 });
  // @ts-expect-error a value must be a User
  await users.put('u1', 'ada');
  // @ts-expect-error a key must be a string
  await users.put(1, { name: 'ada', age: 36 });
  await users.put('u1', { name: 'ada', age: 37 }, { ifValue: { name: 'ada', age: 36 } });
  await users.del('u1', { ifValue: null });
  expectType<User | undefined>(users.get('u1'));
  // @ts-expect-error get returns a User, not a Buffer
  expectType<Buffer | undefined>(users.get('u1'));
  expectType<(User | undefined)[]>(users.getMany(['u1', 'u2']));
  for (const [key, user] of users.range({ gte: 'u', lt: 'v' })) expectType<[string, number]>([key, user.age]);
  // @ts-expect-error bounds are keys: strings
  users.range({ gte: 1 });
  for await (const key of users.keys({ prefix: 'u' })) expectType<string>(key);
  for (const user of users.values()) expectType<number>(user.age);
  expectType<number>(users.count());
  expectType<Promise<number>>(users.clear({ lt: 'z' }));
  await users.batch([
    { type: 'put', key: 'u2', value: { name: 'bob', age: 7 } },
    { type: 'del', key: 'u3' },
  ]);
  // @ts-expect-error a store batch's values are Users
  await users.batch([{ type: 'put', key: 'u2', value: Buffer.from('x') }]);
  // @ts-expect-error utf8 is for strings
  await db.store<number, User>('x', { keyEncoding: 'utf8' });
  // @ts-expect-error with the types left at the default (bytes), only 'binary' is accepted
  await db.store('x', { valueEncoding: 'json' });

  const counts = await db.store<string, number>('counts', { keyEncoding: 'utf8', valueEncoding: 'json' });
  // The database's batch takes operations on stores of any types, and its own keys.
  await db.batch([
    { type: 'put', key: 'u4', value: { name: 'dee', age: 1 }, store: users },
    { type: 'put', key: 'users', value: 4, store: counts },
    { type: 'put', key: 'plain', value: 'bytes' },
  ]);
  await db.transaction((tx) => {
    const user = tx.store(users).get('u4');
    expectType<User | undefined>(user);
    tx.store(counts).put('users', (tx.store(counts).get('users') ?? 0) + 1);
    // @ts-expect-error a transaction's view of counts takes numbers
    tx.store(counts).put('users', 'x');
  });
  const snapshot = db.snapshot();
  expectType<number | undefined>(snapshot.store(counts).get('users'));
  for (const [key, user] of snapshot.store(users).range()) expectType<[string, User]>([key, user]);
  snapshot.release();

  const plain = await db.store('plain');
  expectType<Store>(plain);
  expectType<Buffer | undefined>(plain.get('k'));
  for (const [key, value] of plain.range()) expectType<[Buffer, Buffer]>([key, value]);
}

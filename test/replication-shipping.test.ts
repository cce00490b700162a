/**
 * The leader's shipping without servers (a fake publisher): a message waits for the batch of another
 * owner that has writes outstanding, so one message carries both; it waits no longer than its
 * gathering time for an owner that does not ship; and an owner without outstanding writes is not
 * waited for.
 */
import type { MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderShipping } from '../src/replication/leader-shipping.js';
import type { LogEnvelope } from '../src/replication/log-envelope.js';
import type { LogPublisher, PublishReceipt } from '../src/replication/log-publisher.js';
import { encodeRecord, loadH32Raw, recordBytes, recordTypeOperation } from '../src/storage/wal/wal-format.js';
import type { ShipReply } from '../src/workers/log-shipper.js';

type Envelope = Omit<LogEnvelope, 'term'>;

const h32Raw = await loadH32Raw();

/** Records every message it is asked to publish, each acknowledged at the next stream sequence. */
class FakePublisher {
  readonly term = 1;
  readonly retries = 0;
  lastSequence = 0;
  readonly messages: Envelope[][] = [];

  async publishMessage(envelopes: readonly Envelope[]): Promise<PublishReceipt> {
    this.messages.push([...envelopes]);
    return { streamSequence: ++this.lastSequence, attempts: 1, duplicate: false };
  }
}

/** `count` framed operation records of `partition`, as an owner ships them. */
function records(partition: number, count: number): Uint8Array {
  const payload = new TextEncoder().encode(`a write of partition ${partition}`);
  const out = Buffer.alloc(count * recordBytes(payload.length));
  let offset = 0;
  for (let i = 0; i < count; i++) {
    offset = encodeRecord(h32Raw, out, offset, partition, i + 1, recordTypeOperation, payload);
  }
  return out;
}

/** An owner's side of its port: ships records and resolves with the answer. */
function ship(port: MessagePort, batch: Uint8Array): Promise<ShipReply> {
  return new Promise((resolve) => {
    port.once('message', resolve);
    port.postMessage({ kind: 'records', records: batch });
  });
}

const opened: Array<{ shipping: LeaderShipping; ports: MessagePort[] }> = [];
afterEach(() => {
  for (const { shipping, ports } of opened.splice(0)) {
    shipping.close();
    for (const port of ports) port.close();
  }
});

function shippingFor(options: { ownerHasWork: (worker: number) => boolean; gatherMs: number }) {
  const publisher = new FakePublisher();
  const shipping = new LeaderShipping({
    publisher: publisher as unknown as LogPublisher,
    sequences: [0, 0],
    messageBytesMax: 1024 * 1024,
    isHeld: () => true,
    onStop: () => {},
    ...options,
  });
  const ports = shipping.ports(2);
  opened.push({ shipping, ports });
  return { publisher, ports };
}

describe('leader shipping', () => {
  it('waits for the batch of another owner with writes outstanding: one message carries both', async () => {
    const { publisher, ports } = shippingFor({ ownerHasWork: (worker) => worker === 1, gatherMs: 60_000 });
    const first = ship(ports[0]!, records(0, 3));
    const second = ship(ports[1]!, records(1, 2));
    expect(await first).toEqual({ ok: true });
    expect(await second).toEqual({ ok: true });
    expect(publisher.messages).toHaveLength(1);
    expect(publisher.messages[0]!.map((e) => [e.partition, e.firstSequence, e.lastSequence])).toEqual([
      [0, 1, 3],
      [1, 1, 2],
    ]);
  });

  it('waits no longer than its gathering time for an owner that does not ship', async () => {
    const { publisher, ports } = shippingFor({ ownerHasWork: () => true, gatherMs: 5 });
    expect(await ship(ports[0]!, records(0, 1))).toEqual({ ok: true });
    expect(publisher.messages).toHaveLength(1);
    expect(await ship(ports[0]!, records(0, 1))).toEqual({ ok: true });
    expect(publisher.messages.map((m) => m.map((e) => e.firstSequence))).toEqual([[1], [2]]);
  });

  it('does not wait for an owner without writes outstanding', async () => {
    const { publisher, ports } = shippingFor({ ownerHasWork: () => false, gatherMs: 60_000 });
    expect(await ship(ports[0]!, records(0, 1))).toEqual({ ok: true });
    expect(await ship(ports[1]!, records(1, 1))).toEqual({ ok: true });
    expect(publisher.messages.map((m) => m.map((e) => e.partition))).toEqual([[0], [1]]);
  });
});

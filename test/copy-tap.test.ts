// The tap of lib/io/copy-tap.ts splits a session's reads at message headers:
// every CopyData byte to the consumer, everything else to node-postgres, in
// order, however the reads cut the messages (headers and bodies split across
// reads, many messages in one read). Pure: a stand-in socket records what
// node-postgres would receive.
import { describe, expect, it } from 'vitest';
import { CopyTap } from '../lib/io/copy-tap';

const msg = (type: string, body: Buffer) => {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeUInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
};
const rows = Array.from({ length: 40 }, (_, i) => Buffer.from('x'.repeat(i % 7 === 0 ? 0 : i * 13) + `row ${i}`));
const data = rows.map((r) => msg('d', r));
const before = [msg('H', Buffer.from([0, 0, 1, 0, 0]))];
const after = [msg('c', Buffer.alloc(0)), msg('C', Buffer.from('COPY 40\0')), msg('Z', Buffer.from('I'))];
const stream = Buffer.concat([...before, ...data, ...after]);

function run(cut: (offset: number) => number, tapped = true) {
  const toPg: Buffer[] = [];
  const toSink: Buffer[] = [];
  const tap = new CopyTap((b) => toPg.push(Buffer.from(b)));
  if (tapped) tap.start((b) => toSink.push(Buffer.from(b)));
  // The reused read buffer: each piece is overwritten once read, as the socket's would be.
  const reused = Buffer.alloc(stream.length);
  for (let i = 0; i < stream.length;) {
    const n = Math.min(cut(i), stream.length - i);
    stream.copy(reused, 0, i, i + n);
    tap.read(reused.subarray(0, n));
    reused.fill(0xee, 0, n);
    i += n;
  }
  return { pg: Buffer.concat(toPg), sink: Buffer.concat(toSink) };
}

describe('copy tap', () => {
  it('gives CopyData to the consumer and every other message to node-postgres, for reads of any size', () => {
    for (const size of [1, 2, 3, 4, 5, 6, 7, 11, 64, 1000, stream.length]) {
      const r = run(() => size);
      expect(r.sink.equals(Buffer.concat(data)), `reads of ${size}`).toBe(true);
      expect(r.pg.equals(Buffer.concat([...before, ...after])), `reads of ${size}`).toBe(true);
    }
    // Irregular cuts: every header split at every position somewhere in the run.
    let k = 0;
    const r = run(() => 1 + ((k++ * 7) % 23));
    expect([r.sink.equals(Buffer.concat(data)), r.pg.equals(Buffer.concat([...before, ...after]))]).toEqual([true, true]);
  });

  it('passes everything to node-postgres when no COPY is tapped', () => {
    const r = run(() => 9, false);
    expect([r.pg.equals(stream), r.sink.length]).toEqual([true, 0]);
  });
});

// A COPY relay that forwards the source's CopyData messages to the
// destination as they arrived, framing included, instead of unwrapping every
// message into a payload chunk and wrapping it again. With small rows the
// server sends one message per row; unwrapping and re-wrapping them is most of
// the worker's CPU during a full load. Here the worker only walks the message
// headers, counting rows on the way, and passes byte ranges through.
//
// Built on pg-copy-streams (pinned in package.json): the source side replaces
// its message parser, the destination side its framing, on the instance. Both
// still use its connection hand-over, error handling and backpressure.
import type { Readable, Writable } from 'node:stream';
import type { Submittable } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';

const COPY_DATA = 0x64; // 'd'
const COPY_DONE = 0x63; // 'c'
const ERROR_RESPONSE = 0x45; // 'E'
const HEADER = 5; // type byte + int32 length

/** Rows seen so far: CopyData messages, less the binary format's trailer. */
export interface CopyOutCounts {
  /** CopyData messages forwarded (one per row, plus the binary trailer). */
  messages: number;
  /** Payload bytes (what a plain COPY would have produced). */
  payloadBytes: number;
}

type CopyToInternals = Readable &
  CopyOutCounts & {
    _buffer: { push(b: Buffer): void };
    _detach(): void;
    _cleanup(): void;
    _parse(chunk: Buffer): boolean | undefined;
  };

/**
 * `COPY … TO STDOUT` as a stream of framed CopyData messages (`d`, length,
 * payload), ready to be written to a destination in COPY IN mode as they are.
 */
export function copyOutFramed(sql: string): Readable & CopyOutCounts & Submittable {
  const s = copyTo(sql) as unknown as CopyToInternals;
  s.messages = 0;
  s.payloadBytes = 0;
  let remaining = 0; // bytes of the current message not yet seen
  let forwarding = false; // the current message is CopyData
  let carry: Buffer | null = null; // a message header split across reads

  s._parse = function parse(chunk: Buffer): boolean | undefined {
    const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
    carry = null;
    const n = buf.length;
    let i = 0;
    let runStart = -1; // start of the byte range to forward
    let drained = true;
    const flush = (end: number) => {
      if (runStart >= 0 && end > runStart) drained = this.push(buf.subarray(runStart, end));
      runStart = -1;
    };
    while (i < n) {
      if (remaining > 0) {
        const k = Math.min(remaining, n - i);
        if (forwarding && runStart < 0) runStart = i;
        if (!forwarding) flush(i);
        i += k;
        remaining -= k;
        continue;
      }
      if (n - i < HEADER) {
        flush(i);
        carry = Buffer.from(buf.subarray(i));
        return drained;
      }
      const code = buf[i];
      const len = buf.readUInt32BE(i + 1);
      if (code === ERROR_RESPONSE) {
        // pg parses the error and fails the query (and this stream) with it.
        flush(i);
        this._buffer.push(buf.subarray(i));
        this._detach();
        return undefined;
      }
      if (code === COPY_DONE) {
        flush(i);
        this._buffer.push(buf.subarray(i + 1 + len)); // CommandComplete, ReadyForQuery: pg's
        this._detach();
        this.push(null);
        this._cleanup();
        return drained;
      }
      forwarding = code === COPY_DATA;
      if (forwarding) {
        this.messages++;
        this.payloadBytes += len - 4;
      }
      remaining = 1 + len;
    }
    flush(n);
    return drained;
  };
  return s as unknown as Readable & CopyOutCounts & Submittable;
}

/** `COPY … FROM STDIN` fed with framed CopyData messages (from copyOutFramed), written as they are. */
export function copyInFramed(sql: string): Writable & Submittable & { rowCount: number } {
  const s = copyFrom(sql) as unknown as Writable & { rowCount: number; connection: { stream: Writable }; flushChunk(chunk: Buffer): boolean };
  s.flushChunk = function flushChunk(chunk: Buffer): boolean {
    return this.connection.stream.write(chunk);
  };
  return s as unknown as Writable & Submittable & { rowCount: number };
}

// A connection socket that can hand the CopyData messages of a COPY … TO
// STDOUT straight to a consumer, bypassing node-postgres: the data
// verification's destination read (activities/verify-fingerprint.ts) hashes
// every row of a range and keeps none of them. Read into one reused buffer
// (the socket's `onread`), a gigabyte of rows allocates nothing per read: with
// a new Buffer per read, as a plain socket delivers, the garbage collector
// took a third of the worker's CPU of the verification, and the
// stream-and-async-iterator path on top of it another tenth.
//
// Outside a tapped COPY every byte is copied out and delivered to
// node-postgres as a plain socket would ('data' events), so the connection
// works as any other. During one, the messages are split at their headers:
// CopyData bytes go to the consumer, in order, as they arrived (a message may
// span reads: the consumer gathers it); all other messages (the COPY's
// response, its end, errors, ReadyForQuery) go to node-postgres, which
// completes or fails the query as usual.
import net from 'node:net';
import type { Client } from 'pg';

const COPY_DATA = 0x64; // 'd'
const HEADER = 5; // type byte + int32 length
/** Bytes read at a time into the reused buffer. */
const READ_BUFFER = 256 * 1024;

type Sink = (bytes: Buffer) => void;

/** The splitting of one session's reads (exported for its unit test). */
export class CopyTap {
  sink: Sink | null = null;
  /** Bytes of the current message's body still to come (0: at a header). */
  private remaining = 0;
  private toSink = false;
  private head = Buffer.alloc(HEADER);
  private headHave = 0;

  /** `toPg`: hands bytes to node-postgres (the socket's 'data' event). */
  constructor(private readonly toPg: (bytes: Buffer) => void) {}

  /** Taps the messages from the next one on (the session is idle: at a message boundary). */
  start(sink: Sink): void {
    this.sink = sink;
    this.remaining = 0;
    this.headHave = 0;
    this.toSink = false;
  }

  /** One read: `b` is the reused buffer's view, consumed before this returns. */
  read(b: Buffer): void {
    if (!this.sink) return this.toPg(Buffer.from(b));
    const toPg: Buffer[] = [];
    let runStart = 0;
    let runToSink = this.toSink;
    const flush = (end: number) => {
      if (end > runStart) {
        if (runToSink) this.sink!(b.subarray(runStart, end));
        else toPg.push(Buffer.from(b.subarray(runStart, end)));
      }
      runStart = end;
    };
    const route = (toSink: boolean, at: number) => {
      if (toSink !== runToSink) {
        flush(at);
        runToSink = toSink;
      }
    };
    const n = b.length;
    let i = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const k = Math.min(this.remaining, n - i);
        i += k;
        this.remaining -= k;
        continue;
      }
      if (this.headHave > 0 || n - i < HEADER) {
        // A header split across reads: gathered here, delivered as a piece of its own.
        flush(i);
        const k = Math.min(HEADER - this.headHave, n - i);
        b.copy(this.head, this.headHave, i, i + k);
        this.headHave += k;
        i += k;
        runStart = i;
        if (this.headHave < HEADER) break;
        this.headHave = 0;
        this.toSink = this.head[0] === COPY_DATA;
        // The sink consumes it now; node-postgres gets it at the end of this read, after this.head may be reused.
        if (this.toSink) this.sink(this.head);
        else toPg.push(Buffer.from(this.head));
        runToSink = this.toSink;
        this.remaining = this.head.readUInt32BE(1) - 4;
        continue;
      }
      this.toSink = b[i] === COPY_DATA;
      route(this.toSink, i);
      this.remaining = b.readUInt32BE(i + 1) - 4;
      i += HEADER;
    }
    flush(n);
    if (toPg.length) this.toPg(toPg.length === 1 ? toPg[0] : Buffer.concat(toPg));
  }
}

const taps = new WeakMap<net.Socket, CopyTap>();

/** A socket for node-postgres's `stream` option whose COPY output can be tapped (copyOutTapped). */
export function tappableSocket(): net.Socket {
  const tap = new CopyTap((bytes) => socket.emit('data', bytes));
  // Node reads into `onread.buffer` instead of a new Buffer per read (the typings list `onread` for connect() only).
  const options = {
    onread: {
      buffer: Buffer.allocUnsafe(READ_BUFFER),
      callback: (nread: number, buf: Buffer) => tap.read(buf.subarray(0, nread)),
    },
  };
  const socket = new net.Socket(options as net.SocketConstructorOpts);
  taps.set(socket, tap);
  return socket;
}

/**
 * Runs `sql` (a COPY … TO STDOUT) on a client made with tappableSocket and
 * gives every byte of its CopyData messages, headers included, in order, to
 * `sink` (each piece only for the duration of the call); false when the
 * client's socket cannot be tapped (TLS, or another socket): the caller reads
 * the COPY another way.
 */
export async function copyOutTapped(client: Client, sql: string, sink: Sink): Promise<boolean> {
  const socket = (client as unknown as { connection?: { stream?: net.Socket } }).connection?.stream;
  const tap = socket && taps.get(socket);
  if (!tap || tap.sink) return false;
  tap.start(sink);
  try {
    await client.query(sql);
  } finally {
    tap.sink = null;
  }
  return true;
}

// Reading the slot: pg-logical-replication runs the replication connection
// (START_REPLICATION, CopyData, standby status messages); our own plugin
// decodes pgoutput protocol version 1 from the raw message buffers
// (lib/capture/pgoutput.ts), so values stay the source's text and PostgreSQL
// 11 sources work. The library's automatic acknowledgement is off (no timer,
// no per-message ack): the only position ever reported to the source is the
// one the caller says is durably applied.
//
// Messages and keepalives are queued in arrival order; when the queue holds
// too much, the socket is paused (the walsender then waits), so memory stays
// bounded however fast the source produces.
import type { Client, ClientConfig } from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import { ident, literal } from '../../lib/ident';
import { formatLsn, type Lsn } from '../../lib/capture/lsn';
import { decodePgoutput, type PgoutputMessage } from '../../lib/capture/pgoutput';
import { MessageFramer } from '../../lib/capture/frames';
import { SETTINGS_PROFILES } from '../../lib/io/session';

export type StreamItem =
  | { kind: 'message'; msg: PgoutputMessage; bytes: number }
  /** The walsender's position: every transaction committed before it has been sent. */
  | { kind: 'keepalive'; walEnd: Lsn }
  | { kind: 'error'; error: Error };

/**
 * Session settings of the walsender, whose output functions render the values
 * pgoutput sends: the data profile, the exact re-readable text forms the copy
 * uses, given at connection start (-c name=value, spaces escaped).
 */
export const REPLICATION_SESSION_OPTIONS = Object.entries(SETTINGS_PROFILES.data)
  .map(([k, v]) => `-c ${k}=${v.replace(/[\\ ]/g, (ch) => `\\${ch}`)}`)
  .join(' ');

/** What the replication connection delivers: CopyData bodies (XLogData or keepalive, decoded when taken), a reply request, a failure. */
interface CopyDataSink {
  /** A CopyData body: `buf` from `start` to `end`, bytes that are never overwritten (kept in the queue as they are). */
  copyData(buf: Buffer, start: number, end: number): void;
  /** A keepalive asked for our position now (answered on arrival, not when the queue reaches it). */
  replyRequested(): void;
  error(e: Error): void;
}

const XLOG_DATA = 0x77; // 'w': start, end, send time (8 bytes each), then the pgoutput message
const KEEPALIVE = 0x6b; // 'k': the walsender's end of WAL, send time, reply requested
const XLOG_HEADER = 25;

/**
 * The library's output-plugin hook, used to issue START_REPLICATION and to
 * read the stream's CopyData messages ourselves: the library's own handler
 * formats each message's LSN as a hex string and emits an event per message
 * (with an acknowledgement promise even when acknowledging is off), a tenth of
 * the apply's CPU at 100,000+ messages/s. Ours queues each message's place in
 * the received bytes; it is decoded when the apply takes it.
 */
class RawPgoutputPlugin {
  client: Client | null = null;
  constructor(
    readonly options: { publication: string },
    private readonly sink: CopyDataSink,
  ) {}
  get name() {
    return 'pgoutput';
  }
  start(client: Client, slotName: string, lastLsn: string): Promise<unknown> {
    this.client = client;
    // The library registers its CopyData handler just before it calls start(): ours replaces it.
    // Its parser may reuse its buffer for the next bytes: a body it hands over is copied.
    const connection = (client as unknown as { connection: NodeJS.EventEmitter & { stream: NodeJS.EventEmitter } }).connection;
    connection.removeAllListeners('copyData');
    connection.on('copyData', ({ chunk }: { chunk: Buffer }) => this.copyData(Buffer.from(chunk), 0, chunk.length));
    // And the socket is read by our framer (the connection is idle here: no partial message is
    // pending in the client's parser), which hands CopyData bodies to us and the rest to it.
    // Should the client ever read its socket differently, its own CopyData events serve instead.
    const readers = connection.stream.listeners('data');
    if (readers.length === 1) {
      const parse = readers[0] as (b: Buffer) => void;
      const framer = new MessageFramer(
        (buf, start, end) => this.copyData(buf, start, end),
        (messages) => parse(messages),
      );
      connection.stream.removeListener('data', parse);
      connection.stream.on('data', (b: Buffer) => framer.feed(b));
    }
    const publications = literal(ident(this.options.publication));
    return client.query(`START_REPLICATION SLOT ${ident(slotName)} LOGICAL ${lastLsn} (proto_version '1', publication_names ${publications})`);
  }
  /** Never throws (it runs inside the connection's data handler): a bad message becomes an error item. */
  private copyData(buf: Buffer, start: number, end: number): void {
    const kind = buf[start];
    if (kind === XLOG_DATA && end - start >= XLOG_HEADER + 1) this.sink.copyData(buf, start, end);
    else if (kind === KEEPALIVE && end - start >= 18) {
      this.sink.copyData(buf, start, end);
      if (buf[start + 17] !== 0) this.sink.replyRequested();
    } else this.sink.error(new Error(`replication stream: unknown or short CopyData message ${kind}`));
  }
  /** Unused: the library's handler that would call it is replaced in start(). */
  parse(): never {
    throw new Error('unreachable: CopyData is read by RawPgoutputPlugin.copyData');
  }
}

export interface StreamOptions {
  /** Pause reading above this many queued items / bytes; resume below half. */
  maxItems?: number;
  maxBytes?: number;
  /** How often the applied position is reported even without a keepalive request. */
  statusIntervalMs?: number;
}

/** Bytes a queued CopyData body counts for the queue's bound: its pgoutput message. */
const queuedBytesOf = (buf: Buffer, start: number, end: number) => (buf[start] === XLOG_DATA ? end - start - XLOG_HEADER : 0);

/** The stream item of a queued CopyData body (an undecodable message becomes an error item, in its place). */
function decodeBody(buf: Buffer, start: number, end: number): StreamItem {
  try {
    if (buf[start] === XLOG_DATA) return { kind: 'message', msg: decodePgoutput(buf, start + XLOG_HEADER, end), bytes: end - start - XLOG_HEADER };
    return { kind: 'keepalive', walEnd: buf.readBigUInt64BE(start + 1) };
  } catch (e) {
    return { kind: 'error', error: e as Error };
  }
}

export class ChangeStream {
  private readonly service: LogicalReplicationService;
  private readonly plugin: RawPgoutputPlugin;
  /**
   * The queue: a ring (its length a power of two, doubled when full); entries
   * from head up to tail. An entry is a CopyData body still undecoded (its
   * bytes, start and end: a catch-up keeps ~20,000 of them queued, and
   * decoded messages waiting that long would be copied by every young
   * garbage collection) or, with start -1, an item (an error).
   */
  private bufs: (Buffer | StreamItem | undefined)[] = new Array(1024);
  private starts = new Int32Array(1024);
  private ends = new Int32Array(1024);
  private head = 0;
  private tail = 0;
  private queuedBytes = 0;
  private paused = false;
  private waiter: (() => void) | null = null;
  private closed = false;
  private durable: Lsn;
  private statusTimer: NodeJS.Timeout | null = null;
  private readonly maxItems: number;
  private readonly maxBytes: number;
  /** How full the queue got and how often reading was paused (memory stays bounded). */
  readonly stats = { maxQueuedItems: 0, maxQueuedBytes: 0, pauses: 0 };

  constructor(
    clientConfig: ClientConfig,
    private readonly slot: string,
    publication: string,
    applied: Lsn,
    private readonly opts: StreamOptions = {},
  ) {
    this.durable = applied;
    this.maxItems = opts.maxItems ?? 20_000;
    this.maxBytes = opts.maxBytes ?? 32 << 20;
    this.plugin = new RawPgoutputPlugin(
      { publication },
      {
        copyData: (buf, start, end) => this.push(buf, start, end, queuedBytesOf(buf, start, end)),
        replyRequested: () => this.sendStatus(),
        error: (error) => this.pushItem({ kind: 'error', error }),
      },
    );
    this.service = new LogicalReplicationService({ ...clientConfig, replication: 'database', options: REPLICATION_SESSION_OPTIONS } as ClientConfig, {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    this.service.on('error', (e: Error) => this.pushItem({ kind: 'error', error: e }));
  }

  /** Start streaming after `applied` (transactions that committed at or before it are not sent again). */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve) => this.service.once('start', () => resolve()));
    const ended = this.service.subscribe(this.plugin as never, this.slot, formatLsn(this.durable)).then(
      () => {
        if (!this.closed) this.pushItem({ kind: 'error', error: new Error('the source ended the replication stream') });
      },
      (e: Error) => {
        if (!this.closed) this.pushItem({ kind: 'error', error: e });
        throw e;
      },
    );
    await Promise.race([started, ended]);
    ended.catch(() => undefined);
    this.statusTimer = setInterval(() => this.sendStatus(), this.opts.statusIntervalMs ?? 5_000);
  }

  private pushItem(item: StreamItem): void {
    this.push(item, -1, 0, 0);
  }

  private push(entry: Buffer | StreamItem, start: number, end: number, bytes: number): void {
    if (this.closed) return;
    const t = this.tail;
    this.bufs[t] = entry;
    this.starts[t] = start;
    this.ends[t] = end;
    this.tail = (t + 1) & (this.bufs.length - 1);
    if (this.tail === this.head) this.grow();
    this.queuedBytes += bytes;
    if (this.queuedBytes > this.stats.maxQueuedBytes) this.stats.maxQueuedBytes = this.queuedBytes;
    const pending = this.pending();
    if (pending > this.stats.maxQueuedItems) this.stats.maxQueuedItems = pending;
    if (!this.paused && (pending > this.maxItems || this.queuedBytes > this.maxBytes)) {
      this.paused = true;
      this.stats.pauses++;
      this.socket()?.pause();
    }
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The ring is full (tail caught up with head): twice the room, entries in order from 0. */
  private grow(): void {
    const n = this.bufs.length;
    const h = this.head;
    this.bufs = [...this.bufs.slice(h), ...this.bufs.slice(0, h), ...new Array<undefined>(n)];
    const reorder = (a: Int32Array) => {
      const out = new Int32Array(2 * n);
      out.set(a.subarray(h));
      out.set(a.subarray(0, h), n - h);
      return out;
    };
    this.starts = reorder(this.starts);
    this.ends = reorder(this.ends);
    this.head = 0;
    this.tail = n;
  }

  private socket(): { pause(): void; resume(): void } | undefined {
    return (this.plugin.client as unknown as { connection?: { stream?: { pause(): void; resume(): void } } })?.connection?.stream;
  }

  /** Items waiting to be taken. */
  pending(): number {
    return (this.tail - this.head) & (this.bufs.length - 1);
  }

  /**
   * The next queued item, or undefined when none is queued (no promise: the
   * apply takes most items this way, a few hundred thousand a second).
   */
  take(): StreamItem | undefined {
    const h = this.head;
    if (h === this.tail) return undefined;
    const entry = this.bufs[h]!;
    const start = this.starts[h];
    const end = this.ends[h];
    this.bufs[h] = undefined;
    this.head = (h + 1) & (this.bufs.length - 1);
    let item: StreamItem;
    if (start < 0) item = entry as StreamItem;
    else {
      const buf = entry as Buffer;
      this.queuedBytes -= queuedBytesOf(buf, start, end);
      item = decodeBody(buf, start, end);
    }
    if (this.paused && this.pending() <= this.maxItems / 2 && this.queuedBytes <= this.maxBytes / 2) {
      this.paused = false;
      this.socket()?.resume();
    }
    return item;
  }

  /** The next item in arrival order; rejects when `signal` aborts. */
  async next(signal?: AbortSignal): Promise<StreamItem>;
  /** The same, or undefined when nothing arrived within `timeoutMs`. */
  async next(signal: AbortSignal | undefined, timeoutMs: number): Promise<StreamItem | undefined>;
  async next(signal?: AbortSignal, timeoutMs?: number): Promise<StreamItem | undefined> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    while (this.head === this.tail) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      if (deadline !== undefined && Date.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => {
        const timer = deadline === undefined ? undefined : setTimeout(done, Math.max(0, deadline - Date.now()));
        function done() {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
        signal?.addEventListener('abort', done, { once: true });
        this.waiter = done;
      });
    }
    return this.take();
  }

  /**
   * Report `position` as written, flushed and applied: the source may recycle
   * WAL before it and restart the stream there. Only ever a position that is
   * durably applied (a commit end LSN committed on the destination, or a
   * keepalive position with nothing pending).
   */
  confirm(position: Lsn): void {
    if (position > this.durable) this.durable = position;
    this.sendStatus();
  }

  private sendStatus(): void {
    if (this.closed) return;
    // The status message says "everything before this LSN is flushed"; that
    // is the commit end LSN itself. The library reports the LSN it is given
    // plus one, hence the minus one.
    void this.service.acknowledge(formatLsn(this.durable - 1n)).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.sendStatus();
    this.closed = true;
    if (this.statusTimer) clearInterval(this.statusTimer);
    const w = this.waiter;
    this.waiter = null;
    w?.();
    await this.service.destroy().catch(() => undefined);
  }
}

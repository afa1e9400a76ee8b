// Splitting a PostgreSQL protocol byte stream into messages (1 type byte, a
// 4-byte length that counts itself, the body), for the replication connection:
// CopyData bodies ('d') go straight to the change stream, every other message
// is handed on, as complete messages in their order, to the client library's
// own parser. A CopyData body is named by its place in the received bytes (no
// view object per message); those bytes are never reused, so a body may be
// kept and read later. Past START_REPLICATION nearly every message is CopyData, and
// the library would build a message object and emit an event for each.
// Pure: bytes in, callbacks out.

const COPY_DATA = 0x64; // 'd'
const HEADER = 5;

export class MessageFramer {
  /** The start of a message not yet complete (the socket's chunks, referenced as they came). */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** That message's full length once its header is complete (0: not yet known). */
  private need = 0;

  constructor(
    /** The body of a CopyData message: `buf` from `start` to `end` (received bytes, or a joined copy of them; never overwritten). */
    private readonly copyData: (buf: Buffer, start: number, end: number) => void,
    /** Complete messages of other types, in order (and before any CopyData that followed them). */
    private readonly other: (messages: Buffer) => void,
  ) {}

  feed(data: Buffer): void {
    let buf = data;
    if (this.partsLength) {
      this.parts.push(data);
      this.partsLength += data.length;
      if (!this.need && this.partsLength >= HEADER) this.need = 1 + Buffer.concat(this.parts, HEADER).readUInt32BE(1);
      // A message that spans many chunks is joined once, when it is complete.
      if (!this.need || this.partsLength < this.need) return;
      buf = Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
      this.need = 0;
    }
    let p = 0;
    let othersFrom = -1;
    while (buf.length - p >= HEADER) {
      const end = p + 1 + buf.readUInt32BE(p + 1);
      if (end > buf.length) break;
      if (buf[p] === COPY_DATA) {
        if (othersFrom >= 0) {
          this.other(buf.subarray(othersFrom, p));
          othersFrom = -1;
        }
        this.copyData(buf, p + HEADER, end);
      } else if (othersFrom < 0) othersFrom = p;
      p = end;
    }
    if (othersFrom >= 0) this.other(buf.subarray(othersFrom, p));
    if (p < buf.length) {
      const rest = buf.subarray(p);
      this.parts = [rest];
      this.partsLength = rest.length;
      this.need = rest.length >= HEADER ? 1 + rest.readUInt32BE(1) : 0;
    }
  }
}

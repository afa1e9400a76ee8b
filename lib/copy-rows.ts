// Counting rows in a COPY data stream as it flows, without buffering it:
// the throttle and the progress figures need row counts for binary and text.

/**
 * Counts complete tuples in PostgreSQL's binary COPY format across chunk
 * boundaries. Layout: 11-byte signature, int32 flags, int32 extension length +
 * extension, then tuples of int16 field count (-1 ends the data) and per field
 * an int32 length (-1 = NULL) followed by that many bytes.
 */
// What the next bytes of a binary COPY stream are.
const enum Next {
  Signature, // 11 bytes, skipped
  Flags, // int32
  ExtensionLength, // int32
  Extension, // skipped
  FieldCount, // int16, -1 ends the data
  FieldLength, // int32, -1 = NULL
  FieldData, // skipped
  End,
}

/**
 * Counts complete tuples in PostgreSQL's binary COPY format across chunk
 * boundaries. Layout: 11-byte signature, int32 flags, int32 extension length +
 * extension, then tuples of int16 field count (-1 ends the data) and per field
 * an int32 length (-1 = NULL) followed by that many bytes.
 * A flat state machine (no allocation per field): it runs on every byte range
 * the full load moves, millions of small rows included.
 */
export class BinaryRowCounter {
  private next = Next.Signature;
  /** Bytes still to skip, or still to read into `acc`. */
  private left = 11;
  private acc = 0;
  private fieldsLeft = 0;
  private rows = 0;

  private static readonly INT_SIZE: Partial<Record<Next, number>> = {
    [Next.Flags]: 4,
    [Next.ExtensionLength]: 4,
    [Next.FieldCount]: 2,
    [Next.FieldLength]: 4,
  };

  private expect(next: Next, bytes = BinaryRowCounter.INT_SIZE[next] ?? 0) {
    this.next = next;
    this.left = bytes;
    this.acc = 0;
  }

  /** A field (or the tuple) is complete: read the next field length, or count the tuple. */
  private fieldDone() {
    if (this.fieldsLeft > 0) {
      this.fieldsLeft--;
      this.expect(Next.FieldLength);
    } else {
      this.rows++;
      this.expect(Next.FieldCount);
    }
  }

  /** An integer of the header or a tuple has been read. */
  private gotInt(v: number) {
    switch (this.next) {
      case Next.Flags:
        return this.expect(Next.ExtensionLength);
      case Next.ExtensionLength:
        return v > 0 ? this.expect(Next.Extension, v) : this.expect(Next.FieldCount);
      case Next.FieldCount: {
        const count = v >= 0x8000 ? v - 0x10000 : v;
        if (count === -1) return this.expect(Next.End);
        this.fieldsLeft = count;
        return this.fieldDone();
      }
      case Next.FieldLength:
        return v === 0xffffffff || v === 0 ? this.fieldDone() : this.expect(Next.FieldData, v);
    }
  }

  /** Feed the next piece of the stream; returns the tuples completed in it. */
  push(buf: Buffer): number {
    const before = this.rows;
    let i = 0;
    const n = buf.length;
    while (i < n && this.next !== Next.End) {
      const next = this.next;
      if (next === Next.Signature || next === Next.Extension || next === Next.FieldData) {
        const k = Math.min(this.left, n - i);
        i += k;
        this.left -= k;
        if (this.left > 0) break;
        if (next === Next.Signature) this.expect(Next.Flags);
        else if (next === Next.Extension) this.expect(Next.FieldCount);
        else this.fieldDone();
      } else if (this.left === 4 && next !== Next.FieldCount && i + 4 <= n) {
        // whole integers in the buffer: the common case
        const v = buf.readUInt32BE(i);
        i += 4;
        this.gotInt(v);
      } else if (this.left === 2 && next === Next.FieldCount && i + 2 <= n) {
        const v = buf.readUInt16BE(i);
        i += 2;
        this.gotInt(v);
      } else {
        this.acc = (this.acc * 256 + buf[i++]) >>> 0;
        if (--this.left === 0) this.gotInt(this.acc);
      }
    }
    return this.rows - before;
  }
}

/** Counts rows of text-format COPY: one unescaped newline per row (data newlines are escaped as \n). */
export class TextRowCounter {
  push(buf: Buffer): number {
    let n = 0;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
    return n;
  }
}

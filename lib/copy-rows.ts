// Counting rows in a COPY data stream as it flows, without buffering it:
// the throttle and the progress figures need row counts for binary and text.

/**
 * Counts complete tuples in PostgreSQL's binary COPY format across chunk
 * boundaries. Layout: 11-byte signature, int32 flags, int32 extension length +
 * extension, then tuples of int16 field count (-1 ends the data) and per field
 * an int32 length (-1 = NULL) followed by that many bytes.
 */
export class BinaryRowCounter {
  private mode: 'skip' | 'int' = 'skip';
  private left = 11; // bytes still to skip or to read
  private acc = 0;
  private then: (v: number) => void = () => this.readInt(4, () => this.readInt(4, (ext) => this.skipThen(ext, () => this.tuple())));
  private fieldsLeft = 0;
  private rows = 0;
  private done = false;

  private readInt(bytes: number, then: (v: number) => void) {
    this.mode = 'int';
    this.left = bytes;
    this.acc = 0;
    this.then = then;
  }

  private skipThen(bytes: number, then: () => void) {
    if (bytes <= 0) return then();
    this.mode = 'skip';
    this.left = bytes;
    this.then = then;
  }

  private tuple() {
    this.readInt(2, (v) => {
      const count = v >= 0x8000 ? v - 0x10000 : v;
      if (count === -1) {
        this.done = true;
        return;
      }
      this.fieldsLeft = count;
      this.field();
    });
  }

  private field() {
    if (this.fieldsLeft === 0) {
      this.rows++;
      return this.tuple();
    }
    this.readInt(4, (len) => {
      this.fieldsLeft--;
      this.skipThen(len | 0, () => this.field()); // len -1 (NULL) skips nothing
    });
  }

  /** Feed the next piece of the stream; returns the tuples completed in it. */
  push(buf: Buffer): number {
    const before = this.rows;
    let i = 0;
    while (i < buf.length && !this.done) {
      if (this.mode === 'skip') {
        const n = Math.min(this.left, buf.length - i);
        i += n;
        this.left -= n;
      } else {
        this.acc = ((this.acc << 8) | buf[i++]) >>> 0;
        this.left--;
      }
      if (this.left === 0) this.then(this.acc);
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

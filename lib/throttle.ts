// Rate limiting for the full load and the change apply: rows/s and bytes/s,
// each optional, changeable while running (a new rate applies to the next take).
// A virtual clock per resource: taking n units at rate r books n/r seconds; the
// caller sleeps when the booking runs ahead of real time by more than `burstMs`.
export interface Rates {
  rowsPerSecond: number | null;
  bytesPerSecond: number | null;
}

export class RateLimiter {
  private rowsAt = 0;
  private bytesAt = 0;

  constructor(
    private rates: Rates,
    private readonly burstMs = 100,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  setRates(rates: Rates): void {
    this.rates = rates;
  }

  /** Account for `rows` and `bytes`; resolves when they may pass. */
  async take(rows: number, bytes: number): Promise<void> {
    const t = this.now();
    const { rowsPerSecond: r, bytesPerSecond: b } = this.rates;
    // An idle period earns no credit beyond the burst: start from now at the earliest.
    if (r) this.rowsAt = Math.max(this.rowsAt, t - this.burstMs) + (rows / r) * 1000;
    if (b) this.bytesAt = Math.max(this.bytesAt, t - this.burstMs) + (bytes / b) * 1000;
    const wait = Math.max(r ? this.rowsAt : 0, b ? this.bytesAt : 0) - t;
    if (wait > 0) await this.sleep(wait);
  }
}

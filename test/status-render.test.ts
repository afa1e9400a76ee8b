// Status rendering with synthetic states: per-table progress by rows against the planner's
// estimate (a one-chunk table moves while it copies), running activities' heartbeats folded
// in, rates between two samples, and the terminal form of the markdown.
import { describe, expect, it } from 'vitest';
import { applyPendingBeats, liveRates } from '../lib/live-status';
import { type MigrationState, renderStatusMarkdown, tableFraction } from '../lib/migration-state';
import { newCaptureProgress } from '../lib/capture-progress';
import { clipLine, displayWidth, terminalRenderer } from '../lib/terminal';

const config = {
  mode: { schema: false, full: true, incremental: true },
  verification: { schema: false, full: false, incremental: false, incrementalRowsPerSecond: null },
};
const MB = 1024 * 1024;

function state(): MigrationState {
  const table = (display: string, estimatedRows: number, estimatedBytes: number) => ({
    display,
    chunks: 1,
    chunksDone: 0,
    estimatedRows,
    estimatedBytes,
    rows: 0,
    bytes: 0,
  });
  return {
    runToken: 't',
    phase: 'full-load',
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: null,
    precheck: null,
    schema: { statements: null, byKind: {}, stages: {}, warnings: [], verification: null },
    fullLoad: {
      startedAt: '2026-01-01T00:00:00Z',
      finishedAt: null,
      activeCopies: 2,
      retriedChunks: 0,
      totals: { tables: 2, tablesDone: 0, chunks: 2, chunksDone: 0, rows: 0, bytes: 0, estimatedBytes: 200 * MB },
      tables: { '"public"."big"': table('public.big', 1_000_000, 150 * MB), '"public"."small"': table('public.small', 10_000, 50 * MB) },
    },
    sequences: null,
    dataVerification: null,
    capture: newCaptureProgress('slot', '0/100'),
    throttle: { fullRowsPerSecond: null, fullMbPerSecond: null, incrementalRowsPerSecond: null },
    paused: false,
    abortRequested: false,
    errors: [],
    generation: 0,
  };
}

const beat = (table: string, rows: number, bytes: number) => ({ activity: 'copyChunk', details: { table, chunk: 0, rows, bytes } });

describe('status rendering', () => {
  it('moves a one-chunk table by its rows while it copies, below 100 % until it is done', () => {
    const s = state();
    applyPendingBeats(s, [beat('"public"."big"', 250_000, 40 * MB), beat('"public"."small"', 20_000, 60 * MB), { activity: 'copyChunk', details: undefined }]);
    const f = s.fullLoad!;
    expect(f.totals).toMatchObject({ rows: 270_000, bytes: 100 * MB });
    expect(tableFraction(f.tables['"public"."big"'])).toBeCloseTo(0.25);
    // More rows than the estimate, the chunk not landed yet: not done.
    expect(tableFraction(f.tables['"public"."small"'])).toBe(0.999);
    const md = renderStatusMarkdown('orders', config, s, Date.parse('2026-01-01T00:00:10Z'));
    expect(md).toContain('### Full load: 50.0 % (0/2 chunks, 270,000 rows, 100.0 MB; 0/2 tables) · 27,000 rows/s · 10.0 MB/s');
    expect(md).toContain('| public.big | ██░░░░░░░░ 25 % (0/1 chunks) | 250,000 of ~1,000,000 | 40.0 |');
    expect(md).toContain('| public.small | █████████░ 99 % (0/1 chunks) | 20,000 of ~10,000 | 60.0 |');
    f.tables['"public"."small"'].chunksDone = 1;
    expect(renderStatusMarkdown('orders', config, s)).toContain('| public.small | ██████████ 100 % (1/1 chunks) | 20,000 | 60.0 |');
  });

  it("folds a running apply round's heartbeat into the capture, and nothing into a finished full load", () => {
    const s = state();
    s.fullLoad!.finishedAt = '2026-01-01T00:01:00Z';
    s.capture!.changes = 100;
    applyPendingBeats(s, [
      { activity: 'applyChanges', details: { appliedLsn: '0/200', receivedLsn: '0/210', lagSeconds: 1.5, lagBytes: 4096, transactions: 3, changes: 40 } },
      beat('"public"."big"', 5, 5),
    ]);
    expect(s.capture).toMatchObject({ appliedLsn: '0/200', lagSeconds: 1.5, lagBytes: 4096, changes: 140, transactions: 3 });
    expect(s.fullLoad!.totals.rows).toBe(0);
  });

  it('shows the rates between two samples by table and for the apply', () => {
    const a = state();
    const b = state();
    applyPendingBeats(b, [beat('"public"."big"', 20_000, 2 * MB)]);
    b.capture!.changes = 500;
    const rates = liveRates({ at: 0, state: a }, { at: 2000, state: b })!;
    expect(rates.tables['"public"."big"']).toEqual({ rowsPerSecond: 10_000, bytesPerSecond: MB });
    expect(rates.changesPerSecond).toBe(250);
    const md = renderStatusMarkdown('orders', config, b, Date.parse('2026-01-01T00:00:10Z'), rates);
    expect(md).toContain('| table | progress | rows | MB | now |');
    expect(md).toContain('| 20,000 of ~1,000,000 | 2.0 | 10,000 rows/s, 1.0 MB/s |');
    expect(md).toContain('500 changes applied · now 250 changes/s');
  });
});

describe('terminal rendering', () => {
  const md = [
    '## Evaluation of x: INCOMPATIBLE',
    '### Precheck: 1 pass, 0 warn, 1 fail',
    '| | item | rows |',
    '|---|---|---:|',
    '| ✅ pass | a \\| b | 5 |',
    '| ❌ fail | long-item | 12,345 |',
  ].join('\n');

  it('aligns columns (right where the markdown says ---:) and drops the markdown syntax', () => {
    const lines = terminalRenderer({ color: false })(md).split('\n');
    expect(lines.slice(0, 2)).toEqual(['Evaluation of x: INCOMPATIBLE', 'Precheck: 1 pass, 0 warn, 1 fail']);
    const rows = lines.slice(2);
    expect(rows).toEqual(['           item         rows', '  ✅ pass  a | b           5', '  ❌ fail  long-item  12,345']);
    expect(new Set(rows.map(displayWidth)).size).toBe(1);
  });

  it('colours states: failures red, passes green, a count of 0 not at all', () => {
    const out = terminalRenderer({ color: true })(md);
    expect(out).toContain('\x1b[31mINCOMPATIBLE\x1b[39m');
    expect(out).toContain('\x1b[32mpass\x1b[39m');
    expect(out).toContain('\x1b[31mfail\x1b[39m');
    expect(out).toContain('0 warn');
    expect(out).toContain('1 \x1b[31mfail');
    expect(out).not.toContain('0 \x1b[33mwarn');
  });

  it('clips a line to the terminal width', () => {
    expect(clipLine('abcdef', 4)).toBe('abc…');
    expect(clipLine('\x1b[1mab\x1b[22m', 4)).toBe('\x1b[1mab\x1b[22m');
  });
});

// The workflow state rides in every continue-as-new input, so its size must
// not grow with the number of tables. This drives the workflow's own
// bookkeeping (the full-load tracker, the verification cursor) through a
// synthetic plan of N tables, page by page as the workflow reads it, and
// measures the JSON bytes of the MigrationInput at every point where a run can
// hand over: during and after the full load, during and after verification.
import { describe, expect, it } from 'vitest';
import { FullLoadTracker, newFullLoadProgress, STATUS_TABLES, type FullLoadPage, type PageTable } from '../lib/full-load-progress';
import { parseConfig } from '../lib/io/config-load';
import { initialState, type MigrationInput } from '../lib/migration-state';
import { newDataVerification, VerificationCursor } from '../lib/verification-progress';

const PAGE_CHUNKS = 200;

function table(i: number): PageTable {
  const name = `table_${String(i).padStart(5, '0')}`;
  const rows = 100_000 + i * 37;
  return {
    key: JSON.stringify(['app', name]),
    display: `app.${name}`,
    target: `app.${name}`,
    chunks: 1,
    chunksDone: 0,
    estimatedRows: rows,
    estimatedBytes: rows * 120,
    rows: 0,
    bytes: 0,
    pending: [0],
  };
}

/** The largest continue-as-new input over a whole migration of `n` tables (one chunk each, one table inconsistent). */
function largestInput(n: number): { during: number; after: number } {
  const config = parseConfig({
    name: 'orders',
    source: { host: '10.0.0.1', port: 5432, database: 'app', user: 'migrator', passwordEnv: 'SRC_PW' },
    destination: { host: '10.0.0.2', port: 5432, database: 'app', user: 'owner', passwordEnv: 'DST_PW' },
    objects: { schemas: ['app'] },
  });
  const state = initialState(config, '3f0e4c1a-8a59-4d59-9a3c-2b8c1f5e7d21', '2026-01-01T00:00:00.000Z');
  state.phase = 'full-load';
  state.schema = {
    statements: 9000,
    byKind: { table: n, 'primary-key': n, index: n, sequence: n },
    stages: { 'before-data': { total: 2 * n, applied: 2 * n, skipped: 0, existing: 0 } },
    warnings: [],
    verification: null,
  };
  const size = () => JSON.stringify({ config, state } satisfies MigrationInput).length;
  let during = 0;

  const tables = Array.from({ length: n }, (_, i) => table(i)).sort((a, b) => b.estimatedBytes - a.estimatedBytes);
  const totals = { tables: n, tablesDone: 0, chunks: n, chunksDone: 0, rows: 0, bytes: 0, estimatedBytes: tables.reduce((a, t) => a + t.estimatedBytes, 0) };
  const f = (state.fullLoad = newFullLoadProgress('2026-01-01T00:00:01.000Z'));
  const tracker = new FullLoadTracker(f);
  for (let at = 0; at < n; at += PAGE_CHUNKS) {
    const page: FullLoadPage = {
      totals,
      largest: tables.slice(0, STATUS_TABLES).map(({ target: _t, pending: _p, ...rest }) => rest),
      tables: tables.slice(at, at + PAGE_CHUNKS).map((t) => ({ ...t })),
      last: at + PAGE_CHUNKS,
      toIndex: [],
    };
    if (at === 0) tracker.startRun(page);
    for (const t of page.tables) {
      tracker.queued(t);
      tracker.started(t.key);
      tracker.landed(t.key, { rows: t.estimatedRows, bytes: t.estimatedBytes });
      during = Math.max(during, size());
    }
  }
  f.finishedAt = '2026-01-01T01:00:00.000Z';

  state.phase = 'verify';
  const v = (state.dataVerification = newDataVerification('2026-01-01T01:00:00.000Z'));
  v.total = n;
  const cursor = new VerificationCursor(v);
  tables.forEach((t, i) => {
    const consistent = i !== n - 1;
    cursor.done(i, t.key, {
      display: t.display,
      rowsSource: t.estimatedRows,
      rowsDestination: t.estimatedRows - (consistent ? 0 : 1),
      consistent,
      differingKeys: consistent ? [] : [{ key: ['42'], problem: 'missing on destination' }],
      summary: `${t.estimatedRows.toLocaleString('en-US')} rows in ${t.display} compared, ${consistent ? 'consistent' : '1 of 1 ranges differ'}`,
    });
    during = Math.max(during, size());
  });
  v.finishedAt = '2026-01-01T02:00:00.000Z';
  return { during, after: size() };
}

describe('continue-as-new input size', () => {
  it('stays small and does not grow with the number of tables', () => {
    const two = largestInput(2_000);
    const twenty = largestInput(20_000);
    console.log(
      `continue-as-new input, 2,000 tables: at most ${two.during} bytes while running, ${two.after} bytes at the end; 20,000 tables: ${twenty.during} / ${twenty.after}`,
    );
    expect(two.during).toBeLessThan(32_000);
    expect(twenty.during).toBeLessThan(two.during * 1.1);
    expect(twenty.after).toBeLessThan(two.after * 1.1);
  });

  it('keeps every inconsistent table in the view, even after many consistent ones', () => {
    const v = newDataVerification('2026-01-01T00:00:00.000Z');
    const cursor = new VerificationCursor(v);
    const result = (i: number, consistent: boolean) => ({
      display: `t${i}`,
      rowsSource: 1,
      rowsDestination: 1,
      consistent,
      differingKeys: [],
      summary: `t${i}`,
    });
    // Out of order, as parallel lanes finish: counted only once everything before is in.
    cursor.done(1, 't1', result(1, true));
    expect(v.compared).toBe(0);
    cursor.done(0, 't0', result(0, true));
    expect(v.compared).toBe(2);
    for (let i = 2; i < 200; i++) cursor.done(i, `t${i}`, result(i, i % 50 !== 7));
    expect(v.compared).toBe(200);
    expect(v.inconsistent).toBe(4);
    expect(Object.keys(v.tables).length).toBe(50);
    expect(
      Object.values(v.tables)
        .filter((t) => !t.consistent)
        .map((t) => t.display),
    ).toEqual(['t7', 't57', 't107', 't157']);
    expect(v.tables.t0).toBeDefined(); // the largest (first compared) stay
  });
});

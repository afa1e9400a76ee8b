// A table with inheritance children holds only its own rows: the full load
// copies each table's own rows (never a child's through its parent) and data
// verification compares each table's own rows, however the table is chunked.
import { describe, expect, it } from 'vitest';
import { planAllTables } from './harness/full-load';
import { copyChunk } from '../activities/full-load/chunk';
import { verifyTableData } from '../activities/verify-data';
import { claimDestination, migrateSchema } from './fixtures/schema-source';
import { makePair, uid, type Side } from './harness/env';

const SOURCE = `
CREATE TABLE public.parent (id int PRIMARY KEY, pad text NOT NULL);
CREATE TABLE public.child (extra int) INHERITS (public.parent);
CREATE TABLE public.keyless_parent (id int, pad text);
CREATE TABLE public.keyless_child () INHERITS (public.keyless_parent);
INSERT INTO public.parent SELECT g, repeat('p', 200) FROM generate_series(1, 20000) g;
INSERT INTO public.child SELECT g, 'c', g FROM generate_series(100001, 100010) g;
INSERT INTO public.keyless_parent SELECT g, repeat('p', 200) FROM generate_series(1, 20000) g;
INSERT INTO public.keyless_child SELECT g, 'c' FROM generate_series(100001, 100010) g;
ANALYZE;`;

const own = async (side: Side, table: string) => Number((await side.sql<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${table}`))[0].n);

describe('full load of inheritance trees', () => {
  it('copies and verifies each table’s own rows, in several chunks', async () => {
    const pair = await makePair();
    await pair.source.sql(SOURCE);
    const config = pair.config({ mode: { schema: true, full: true, incremental: false }, fullLoad: { chunkMb: 1 } });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);
    await migrateSchema(config, runToken);
    const planned = await planAllTables(config, runToken);
    expect(planned.find((t) => t.display === 'public.parent')!.chunks).toBeGreaterThan(1);
    expect(planned.find((t) => t.display === 'public.keyless_parent')!.chunks).toBeGreaterThan(1);
    for (const t of planned) for (let chunk = 0; chunk < t.chunks; chunk++) await copyChunk({ config, runToken, table: t.key, chunk });
    for (const t of ['public.parent', 'public.child', 'public.keyless_parent', 'public.keyless_child']) {
      expect(await own(pair.destination, t), t).toBe(await own(pair.source, t));
    }
    const summaries = [];
    const proved: Record<string, number | undefined> = {};
    for (const t of planned) {
      const v = await verifyTableData({ config, table: t.key });
      summaries.push(v.summary);
      proved[v.display] = v.fingerprintedRanges;
    }
    // The copy's fingerprints prove each keyed table's ranges (ONLY on both sides) and the keyless child (one chunk);
    // the keyless parent, copied in page ranges the destination has no match for, is compared by the digests.
    expect(proved).toEqual({
      'public.parent': planned.find((t) => t.display === 'public.parent')!.chunks,
      'public.child': 1,
      'public.keyless_child': 1,
      'public.keyless_parent': undefined,
    });
    expect(summaries.sort()).toEqual([
      '10 rows in public.child compared, consistent',
      '10 rows in public.keyless_child compared, consistent',
      '20,000 rows in public.keyless_parent compared, consistent',
      '20,000 rows in public.parent compared, consistent',
    ]);
  });
});

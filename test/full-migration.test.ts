// The whole full-migration path on the hard schema WITH data, PostgreSQL 15 → 18:
// schema from the catalogs, chunked copy, keys, indexes, FKs, matviews,
// sequences, ANALYZE, verification. An independent comparison (every row of
// every table and materialized view as text) finds both sides identical.
import { describe, expect, it } from 'vitest';
import { startMigration, waitForMigration } from '../client';
import { applySchemaSource, SCHEMA_SOURCE_SCHEMAS } from './fixtures/schema-source';
import { runCli } from './harness/cli';
import { firstDifference, tableRows } from './harness/compare';
import { makePair, temporalClient, uid, withWorker } from './harness/env';
import { recordHistories } from './harness/histories';

const DATA = `
INSERT INTO app."user" ("Email", aliases, name, moods, home, created_at)
  SELECT 'User' || g || '@Example.com', ARRAY['A' || g, NULL], 'name ' || g, ARRAY['ok', 'it''s complicated']::app.mood[],
         ROW('street "' || g || '"', 'City, ' || g, lpad(g::text, 5, '0'))::app.address,
         timestamptz '2001-01-01 00:00:00.000001+00' + g * interval '1 day 1 microsecond'
    FROM generate_series(1, 300) g;
INSERT INTO app."order" (region, user_id, sku, qty, price, placed, status)
  SELECT g % 4, (SELECT min(id) FROM app."user") + (g % 300) * 10, 'ABC-' || g, 1 + g % 7, (g * 1.0000000001)::numeric(38,10),
         tstzrange(timestamptz '2024-01-01+00' + g * interval '1 hour', NULL), (ARRAY['sad','ok','happy'])[1 + g % 3]::app.mood
    FROM generate_series(1, 5000) g;
INSERT INTO "Billing Ops"."Invoice Lines" (amount, n, ts, b, j, bits, vb, doc, nums, u, ip, dur, validity, "Order", "Region")
  SELECT g * 0.5, CASE WHEN g % 5 = 0 THEN -g ELSE g END / 3.0, CASE g % 3 WHEN 0 THEN 'infinity' WHEN 1 THEN '0044-03-15 12:00:00.123456 BC' ELSE now() END,
         decode(repeat(md5(g::text), 1 + g % 300), 'hex'), jsonb_build_object('key', 'K' || g, 'nested', jsonb_build_object('z', 1, 'a', ARRAY[g, NULL])),
         (g % 256)::bit(8), repeat('10', g % 20)::varbit, to_tsvector('english', 'line number ' || g), ARRAY[g, NULL, -g],
         md5(g::text)::uuid, ('10.0.' || (g % 256) || '.1')::inet, g * interval '1 minute 1.5 second', app.floatrange(g, g + 0.5),
         o.order_no, o.region
    FROM generate_series(1, 3000) g JOIN app."order" o ON o.order_no = g;
INSERT INTO app.events SELECT g, timestamptz '2024-06-01+00' + (g % 900) * interval '1 day', (ARRAY['a','b','misc'])[1 + g % 3], jsonb_build_object('g', g)
  FROM generate_series(1, 6000) g;
INSERT INTO app.tags SELECT 'tag ' || g, CASE WHEN g % 2 = 0 THEN 'Note' ELSE 'NOTE' END FROM generate_series(1, 500) g;
INSERT INTO app.counters (label) SELECT 'c' || g FROM generate_series(1, 50) g;
INSERT INTO app.bookings SELECT g, tsrange(timestamp '2026-01-01' + g * interval '2 hours', timestamp '2026-01-01' + g * interval '2 hours' + interval '1 hour') FROM generate_series(1, 400) g;
INSERT INTO public.settings VALUES ('theme', '{"b": 1, "a": [true, null]}'), ('empty', '{}');
SELECT app.next_code() FROM generate_series(1, 7);
REFRESH MATERIALIZED VIEW app.order_totals;
ANALYZE;
`;

async function relations(pair: Awaited<ReturnType<typeof makePair>>) {
  return pair.source.sql<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'm') ORDER BY 1`,
    [SCHEMA_SOURCE_SCHEMAS],
  );
}

describe('full migration of the hard schema with data', () => {
  it('PostgreSQL 15 → 18: every row and sequence arrives, verification is clean', async () => {
    const pair = await makePair();
    await applySchemaSource(pair);
    await pair.source.sql(DATA);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: true, full: true, incremental: false },
      objects: { schemas: SCHEMA_SOURCE_SCHEMAS },
      fullLoad: { chunkMb: 1 },
      verification: { full: true, incremental: false, schema: true },
      acknowledgeWarnings: ['triggers-and-rules', 'materialized-views', 'replica-identity', 'ddl-capture', 'wal-retention', 'replica-role'],
    });
    const client = await temporalClient();
    const { final, cliClean, cliTampered } = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      const final = await waitForMigration(client, config.name);
      // `pgshift verify --schema` (its own workflow, same activity): clean, then one tampered column.
      const cliClean = await runCli(['verify', config.name, '--schema']);
      await pair.destination.sql('ALTER TABLE app.tags ALTER COLUMN note SET NOT NULL');
      const cliTampered = await runCli(['verify', config.name, '--schema']);
      return { final, cliClean, cliTampered };
    });
    expect(cliClean.code, cliClean.stderr).toBe(0);
    expect(cliClean.stdout).toContain('schema: no difference');
    expect(cliTampered.code, cliTampered.stderr).toBe(1);
    expect(cliTampered.stdout).toContain('column app.tags.note: notNull: source "false", destination "true"');
    expect(final.state.phase).toBe('done');
    // Schema verification ran after the data (keys, indexes, FKs, matviews in place) and found nothing.
    expect(final.state.schema.verification!.differences).toEqual([]);
    expect(final.state.schema.verification!.compared.table).toBeGreaterThan(10);
    // Keys and indexes of plain tables were built right after each table's copy; the phases found them done.
    expect(final.state.schema.stages.keys!.skipped).toBeGreaterThan(0);
    expect(final.state.schema.stages['post-data']!.skipped).toBeGreaterThan(0);
    const rels = await relations(pair);
    expect(rels.length).toBeGreaterThan(10);
    for (const { name } of rels) {
      const [a, b] = await Promise.all([tableRows(pair.source, name, '1'), tableRows(pair.destination, name, '1')]);
      expect(firstDifference(a, b), name).toBeNull();
    }
    // Sequences on the destination are at least the source's.
    const seqs = `SELECT format('%I.%I', schemaname, sequencename) AS name, coalesce(last_value, 0) AS v FROM pg_sequences WHERE schemaname = ANY($1) ORDER BY 1`;
    const [s, d] = await Promise.all([
      pair.source.sql<{ name: string; v: string }>(seqs, [SCHEMA_SOURCE_SCHEMAS]),
      pair.destination.sql<{ name: string; v: string }>(seqs, [SCHEMA_SOURCE_SCHEMAS]),
    ]);
    expect(d.map((x) => x.name)).toEqual(s.map((x) => x.name));
    for (const [i, x] of s.entries()) expect(BigInt(d[i].v), x.name).toBeGreaterThanOrEqual(BigInt(x.v));
    const v = Object.values(final.state.dataVerification!.tables);
    expect(v.filter((t) => !t.consistent)).toEqual([]);
    expect(v.map((t) => t.summary)).toEqual(expect.arrayContaining(['5,000 rows in app."order" compared, consistent']));
    // Keys, indexes and FKs exist on the destination.
    const [{ n }] = await pair.destination.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = ANY($1) AND c.contype IN ('p', 'f', 'u', 'x')`,
      [SCHEMA_SOURCE_SCHEMAS],
    );
    const [{ n: srcN }] = await pair.source.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = ANY($1) AND c.contype IN ('p', 'f', 'u', 'x')`,
      [SCHEMA_SOURCE_SCHEMAS],
    );
    expect(n).toBe(srcN);
    await recordHistories(client, final.workflowId, 'migration-schema-full-verify');
    await client.connection.close();
  });
});

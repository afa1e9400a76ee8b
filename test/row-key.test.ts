// One choice of row key and one table selection for the whole migration: the
// key the precheck reports, the index the schema migration makes the
// destination's replica identity, the full load's chunk key and the key data
// verification drills down by are the same index; a foreign table is selected
// the same way by precheck, schema migration and full load.
import { describe, expect, it } from 'vitest';
import { planAllTables } from './harness/full-load';
import { copyChunk } from '../activities/full-load/chunk';
import type { CopyTable } from '../activities/full-load/tables';
import { precheck } from '../activities/precheck';
import { planSchema } from '../activities/schema';
import { verifyTableData } from '../activities/verify-data';
import type { Config, ConfigInput } from '../lib/config';
import type { PrecheckId, PrecheckItem } from '../lib/precheck-catalog';
import { claimDestination, migrateSchema } from './fixtures/schema-source';
import { makePair, uid, type Pair } from './harness/env';

const SOURCE = `
CREATE SCHEMA app;
-- (a) a primary key, and a one-column non-null UNIQUE index whose name sorts first
CREATE TABLE app.a (id int PRIMARY KEY, u int NOT NULL CONSTRAINT a_a_key UNIQUE, v text);
-- (b) only one usable UNIQUE key; the unusable ones (deferrable, nullable, partial, expression) sort first
CREATE TABLE app.b (code text NOT NULL, n int, v text, CONSTRAINT b_code_key UNIQUE (code), CONSTRAINT b_a_deferrable UNIQUE (code) DEFERRABLE);
CREATE UNIQUE INDEX b_a_nullable ON app.b (n);
CREATE UNIQUE INDEX b_a_partial ON app.b (code) WHERE n > 0;
CREATE UNIQUE INDEX b_a_expression ON app.b (lower(code));
-- (c) a primary key and another UNIQUE index as replica identity
CREATE TABLE app.c (id int PRIMARY KEY, alt int NOT NULL, v text);
CREATE UNIQUE INDEX c_alt_idx ON app.c (alt);
ALTER TABLE app.c REPLICA IDENTITY USING INDEX c_alt_idx;
-- (d) no primary key: two one-column non-null UNIQUE indexes (the name decides) and a wider one that sorts first
CREATE TABLE app.d (x int NOT NULL, y int NOT NULL, z text);
CREATE UNIQUE INDEX d_y_key ON app.d (y);
CREATE UNIQUE INDEX d_x_key ON app.d (x);
CREATE UNIQUE INDEX d_a_xy ON app.d (x, y);
INSERT INTO app.a SELECT g, g + 1000, 'v' FROM generate_series(1, 20) g;
INSERT INTO app.b SELECT 'k' || g, g, 'v' || g FROM generate_series(1, 20) g;
INSERT INTO app.c SELECT g, g + 1000, 'v' FROM generate_series(1, 20) g;
INSERT INTO app.d SELECT g, g + 1000, 'z' FROM generate_series(1, 20) g;
`;

const TABLES = ['app.a', 'app.b', 'app.c', 'app.d'];
/** Each table's row key: its PRIMARY KEY, or the UNIQUE index that identifies its rows. */
const EXPECTED = { 'app.a': 'PRIMARY KEY', 'app.b': 'b_code_key', 'app.c': 'PRIMARY KEY', 'app.d': 'd_x_key' };

async function items(config: Config): Promise<Record<PrecheckId, PrecheckItem>> {
  return Object.fromEntries((await precheck({ config })).map((i) => [i.id, i])) as Record<PrecheckId, PrecheckItem>;
}

/** A config of its own (schema plans and copy plans are stored once per migration name). */
function configFor(pair: Pair, overrides: Partial<ConfigInput> = {}): Config {
  return pair.config({ name: `${pair.name}_${uid()}`, objects: { schemas: ['app'] }, ...overrides });
}

async function copyPlans(pair: Pair, config: Config): Promise<CopyTable[]> {
  const rows = await pair.destination.sql<{ spec: CopyTable }>('SELECT spec FROM pgshift.copy_tables WHERE migration = $1 ORDER BY table_key', [config.name]);
  return rows.map((r) => r.spec);
}

describe('one row key for precheck, schema, full load and verification', () => {
  it('is the PK, else the replica-identity index, else the narrowest UNIQUE index by name', async () => {
    const pair = await makePair();
    await pair.source.sql(SOURCE);
    const config = configFor(pair, { mode: { schema: true, full: true, incremental: true } });
    const runToken = `run-${uid()}`;

    // Precheck: tables keyed by a UNIQUE index are reported with it; the others by their PRIMARY KEY.
    const r = await items(config);
    expect(r['primary-keys'].verdict).toBe('pass');
    expect(r['primary-keys'].cause).toMatch(
      /^every selected table has a row key: 2 by PRIMARY KEY; 2 by a non-null UNIQUE index: app\.b \(b_code_key\), app\.d \(d_x_key\)$/,
    );
    const byPrecheck = Object.fromEntries(TABLES.map((t) => [t, r['primary-keys'].keys![t] ?? 'PRIMARY KEY']));
    // Replica identities that do not log the row key are named (c logs alt, not its primary key).
    expect(r['replica-identity']).toMatchObject({ verdict: 'warn', objects: ['app.b', 'app.c', 'app.d'] });
    expect(r['replica-identity'].fix).toContain('ALTER TABLE app.c REPLICA IDENTITY DEFAULT;');

    // Schema migration: the row key is built with the keys and is the destination's replica identity.
    await claimDestination(config, runToken);
    const { plan } = await migrateSchema(config, runToken);
    expect(plan.byKind).toMatchObject({ 'primary-key': 2, 'replica-key': 2, 'replica-identity': 2 });
    const ri = await pair.destination.sql<{ t: string; mode: string; index: string; primary: boolean }>(
      `SELECT c.oid::regclass::text AS t, c.relreplident AS mode, ic.relname AS index, i.indisprimary AS primary
         FROM pg_class c
         JOIN pg_index i ON i.indrelid = c.oid AND CASE c.relreplident WHEN 'i' THEN i.indisreplident WHEN 'd' THEN i.indisprimary ELSE false END
         JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'r' ORDER BY 1`,
    );
    expect(ri.map((x) => x.mode)).toEqual(['d', 'i', 'd', 'i']);
    const bySchema = Object.fromEntries(ri.map((x) => [x.t, x.primary ? 'PRIMARY KEY' : x.index]));
    expect(ri.filter((x) => x.primary).map((x) => x.index)).toEqual(['a_pkey', 'c_pkey']);

    // Full load: the chunk key.
    const planned = await planAllTables(config, runToken);
    const specs = await copyPlans(pair, config);
    const byChunkKey = Object.fromEntries(specs.map((s) => [s.display, s.chunkKey!.primary ? 'PRIMARY KEY' : s.chunkKey!.index]));
    expect(specs.map((s) => [s.display, s.chunkKey!.index, s.chunkKey!.columns])).toEqual([
      ['app.a', 'a_pkey', ['id']],
      ['app.b', 'b_code_key', ['code']],
      ['app.c', 'c_pkey', ['id']],
      ['app.d', 'd_x_key', ['x']],
    ]);

    expect(byPrecheck).toEqual(EXPECTED);
    expect(bySchema).toEqual(EXPECTED);
    expect(byChunkKey).toEqual(EXPECTED);

    // Data verification names a differing row by the same key.
    for (const t of planned) for (let chunk = 0; chunk < t.chunks; chunk++) await copyChunk({ config, runToken, table: t.key, chunk });
    await pair.destination.sql(`UPDATE app.a SET v = 'x' WHERE id = 5; UPDATE app.b SET v = 'x' WHERE code = 'k5';
                                UPDATE app.c SET v = 'x' WHERE id = 5; UPDATE app.d SET z = 'x' WHERE x = 5`);
    const differing: Record<string, string[]> = {};
    for (const t of planned) {
      const v = await verifyTableData({ config, table: t.key });
      expect(v.differingKeys.map((d) => d.problem)).toEqual(['different']);
      differing[t.display] = v.differingKeys[0].key;
    }
    expect(differing).toEqual({ 'app.a': ['5'], 'app.b': ['k5'], 'app.c': ['5'], 'app.d': ['5'] });
  });
});

describe('one table selection', () => {
  const FOREIGN = `
    CREATE SCHEMA app;
    CREATE TABLE app.a (id int PRIMARY KEY);
    CREATE FOREIGN DATA WRAPPER pgshift_test_fdw;
    CREATE SERVER pgshift_test_server FOREIGN DATA WRAPPER pgshift_test_fdw;
    CREATE FOREIGN TABLE app.remote (id int) SERVER pgshift_test_server;`;

  /** What precheck, schema plan and copy plan each make of the foreign table app.remote. */
  async function treatment(pair: Pair, objects: Partial<ConfigInput['objects']>) {
    const config = configFor(pair, { objects: { schemas: ['app'], ...objects }, mode: { schema: true, full: true, incremental: false } });
    const runToken = `run-${uid()}`;
    const foreign = (await items(config))['foreign-tables'];
    await claimDestination(config, runToken);
    const plan = await planSchema({ config, runToken });
    await planAllTables(config, runToken);
    return {
      precheck: foreign.objects ?? [],
      schema: plan.warnings.filter((w) => w.includes('app.remote')),
      copied: (await copyPlans(pair, config)).map((t) => t.display),
    };
  }

  it('treats a foreign table alike everywhere: reported when selected, never copied, silent when left out', async () => {
    const pair = await makePair();
    await pair.source.sql(FOREIGN);
    expect(await treatment(pair, {})).toEqual({
      precheck: ['app.remote'],
      schema: ['foreign table app.remote not created: foreign tables are not migrated'],
      copied: ['app.a'],
    });
    const leftOut = { precheck: [], schema: [], copied: ['app.a'] };
    expect(await treatment(pair, { exclude: ['app.remote'] })).toEqual(leftOut);
    expect(await treatment(pair, { include: ['app.a'] })).toEqual(leftOut);
  });
});

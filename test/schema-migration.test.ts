// Schema migration end to end (issue 3): plan and apply every stage, then an
// independent catalog comparison written here (sharing no code with pgshift)
// must find the destination identical to the source, 15 → 18 and 15 → 15.
import { describe, expect, it } from 'vitest';
import { clusters, makePair, uid, type Side } from './harness/env';
import { applySchemaSource, claimDestination, migrateSchema, SCHEMA_SOURCE_SCHEMAS } from './fixtures/schema-source';

type Snapshot = Record<string, string[]>;

const IN_SCHEMAS = (nsp: string) => `${nsp} IN (SELECT oid FROM pg_namespace WHERE nspname = ANY($1))`;

const QUERIES: Record<string, string> = {
  relations: `SELECT c.oid::regclass::text, c.relkind, c.relpersistence, c.relreplident, c.relispopulated,
                     pg_get_partkeydef(c.oid), pg_get_expr(c.relpartbound, c.oid), c.reloptions::text
                FROM pg_class c WHERE ${IN_SCHEMAS('c.relnamespace')}`,
  columns: `SELECT c.oid::regclass::text, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attcollation::regcollation::text
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE ${IN_SCHEMAS('c.relnamespace')} AND a.attnum > 0 AND NOT a.attisdropped`,
  // PostgreSQL 18 records NOT NULL as constraints too (contype n); attnotnull above covers them on both sides.
  constraints: `SELECT coalesce(conrelid::regclass::text, contypid::regtype::text), conname, contype, pg_get_constraintdef(oid),
                       condeferrable, condeferred, convalidated
                  FROM pg_constraint WHERE ${IN_SCHEMAS('connamespace')} AND contype <> 'n'`,
  indexes: `SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text AS tbl, pg_get_indexdef(i.indexrelid) AS def,
                   i.indisprimary, i.indisunique, i.indisvalid, i.indisreplident,
                   (SELECT h.inhparent::regclass::text FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
              FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE ${IN_SCHEMAS('c.relnamespace')}`,
  views: `SELECT c.oid::regclass::text, pg_get_viewdef(c.oid, true) AS view FROM pg_class c WHERE c.relkind IN ('v', 'm') AND ${IN_SCHEMAS('c.relnamespace')}`,
  functions: `SELECT p.oid::regprocedure::text, p.prokind, rtrim(pg_get_functiondef(p.oid)) FROM pg_proc p
               WHERE ${IN_SCHEMAS('p.pronamespace')} AND p.prokind <> 'a'
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype IN ('e', 'i'))`,
  types: `SELECT t.oid::regtype::text, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull, pg_get_expr(t.typdefaultbin, 0),
                 (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)::text,
                 r.rngsubtype::regtype::text, r.rngsubdiff::regproc::text, r.rngmultitypid::regtype::text, t.typcollation::regcollation::text
            FROM pg_type t LEFT JOIN pg_range r ON r.rngtypid = t.oid
           -- extension types and their arrays (newer servers also record the array as an extension member)
           WHERE ${IN_SCHEMAS('t.typnamespace')}
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid IN (t.oid, t.typelem) AND d.deptype = 'e')`,
  sequences: `SELECT schemaname, sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle, cache_size
                FROM pg_sequences WHERE schemaname = ANY($1)`,
  comments: `SELECT o.type, o.identity, d.description
               FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
              WHERE o.type <> 'extension'
                AND (o.schema = ANY($1) OR (d.classoid = 'pg_namespace'::regclass AND d.objoid IN (SELECT oid FROM pg_namespace WHERE nspname = ANY($1))))`,
  triggers: `SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE NOT t.tgisinternal AND ${IN_SCHEMAS('c.relnamespace')}`,
  extensions: `SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'`,
  collations: `SELECT c.oid::regcollation::text, c.collprovider, c.collisdeterministic,
                      coalesce(to_jsonb(c)->>'colllocale', to_jsonb(c)->>'colliculocale', c.collcollate), c.collctype
                 FROM pg_collation c WHERE ${IN_SCHEMAS('c.collnamespace')}`,
};

/**
 * PostgreSQL 16 dropped the OLD/NEW entries from a view's range table, so a
 * one-relation view is deparsed without qualifying its columns ("user".id →
 * id). Normalize both sides to the unqualified form.
 */
function normalizeView(def: string): string {
  const from = /\bFROM\s+(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\.("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*(?:;|$|\n\s*(?:WHERE|GROUP|ORDER|HAVING|LIMIT)\b)/.exec(
    def,
  );
  if (!from || /\bJOIN\b|\bFROM\b[\s\S]*\bFROM\b/.test(def)) return def;
  const alias = from[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return def.replace(new RegExp(`(?<![.\\w"])${alias}\\.`, 'g'), '');
}

function normalize(section: string, row: Record<string, unknown>): string {
  if (section === 'views') row.view = normalizeView(String(row.view));
  if (section === 'indexes') row.def = String(row.def).replace(` ON ${row.tbl} `, ' ON <table> ').replace(` ON ONLY ${row.tbl} `, ' ON ONLY <table> ');
  return JSON.stringify(Object.values(row));
}

async function snapshot(side: Side, schemas: string[]): Promise<Snapshot> {
  const c = await side.cluster.connect(side.database);
  try {
    await c.query("SELECT set_config('search_path', '', false)");
    await c.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3");
    const out: Snapshot = {};
    for (const [section, sql] of Object.entries(QUERIES)) {
      const params = sql.includes('$1') ? [schemas] : [];
      const rows = (await c.query(sql, params)).rows;
      out[section] = rows.map((r) => normalize(section, r)).sort();
    }
    return out;
  } finally {
    await c.end();
  }
}

/**
 * A table without primary key is identified on the destination by its row key:
 * the destination gets REPLICA IDENTITY USING INDEX that index where the source
 * may have kept the default.
 */
function withReplicaIdentityIndex(s: Snapshot, table: string, index: string): Snapshot {
  const patch = (rows: string[], match: (v: unknown[]) => boolean, column: number, value: unknown) =>
    rows
      .map((r) => {
        const v = JSON.parse(r) as unknown[];
        if (match(v)) v[column] = value;
        return JSON.stringify(v);
      })
      .sort();
  return { ...s, relations: patch(s.relations, (v) => v[0] === table, 3, 'i'), indexes: patch(s.indexes, (v) => v[0] === index, 6, true) };
}

describe('schema migration from the source catalogs', () => {
  const cs = () => clusters();
  for (const [label, destination] of [
    ['PostgreSQL 15 → 18', () => cs().pg18],
    ['PostgreSQL 15 → 15', () => cs().pg15b],
  ] as const) {
    it(`creates every selected object identically (${label})`, async () => {
      const pair = await makePair({ destination: destination() });
      await applySchemaSource(pair);
      const config = pair.config({ objects: { schemas: SCHEMA_SOURCE_SCHEMAS, triggers: true } });
      const runToken = `run-${uid()}`;
      await claimDestination(config, runToken);

      const { plan, stages } = await migrateSchema(config, runToken);
      expect(plan.warnings).toEqual([]);
      expect(plan.reused).toBe(false);
      expect(plan.byStage).toEqual({ 'before-data': stages['before-data']!.total, keys: stages.keys!.total, 'post-data': stages['post-data']!.total });
      for (const p of Object.values(stages)) expect(p).toMatchObject({ skipped: 0, existing: 0, applied: p!.total });
      // Each fixture feature shows up as its own kind of statement.
      expect(plan.byKind).toMatchObject({
        schema: 3,
        extension: 1,
        enum: 1,
        domain: 2,
        composite: 1,
        range: 1,
        partition: 3,
        view: 2,
        'materialized-view': 1,
        trigger: 1,
        default: 1,
        'replica-key': 1,
        'foreign-key': 2,
        exclusion: 1,
        collation: 1,
      });

      const [raw, dst] = await Promise.all([snapshot(pair.source, SCHEMA_SOURCE_SCHEMAS), snapshot(pair.destination, SCHEMA_SOURCE_SCHEMAS)]);
      // app.tags has only a non-null UNIQUE key.
      const src = withReplicaIdentityIndex(raw, 'app.tags', 'app.tags_name_key');
      for (const section of Object.keys(QUERIES)) {
        expect(src[section].length, `${section} on the source`).toBeGreaterThan(0);
        expect(dst[section], section).toEqual(src[section]);
      }
    });
  }

  it('copies owners and grants when objects.ownership is true', async () => {
    const pair = await makePair();
    const owner = `own_${uid()}`;
    const reader = `read_${uid()}`;
    for (const side of [pair.source, pair.destination]) await side.cluster.sql(`CREATE ROLE ${owner}; CREATE ROLE ${reader}`);
    // The destination role must be able to give objects away (SET ROLE to the new owner).
    await pair.destination.cluster.sql(`GRANT ${owner} TO ${pair.destination.user}`);
    await pair.source.sql(`
      CREATE SCHEMA app AUTHORIZATION ${owner};
      CREATE TABLE app.t (id int PRIMARY KEY, v text);
      CREATE VIEW app.v AS SELECT id FROM app.t;
      CREATE SEQUENCE app.s;
      CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
      CREATE TYPE app.e AS ENUM ('a');
      ALTER TABLE app.t OWNER TO ${owner}; ALTER VIEW app.v OWNER TO ${owner}; ALTER SEQUENCE app.s OWNER TO ${owner};
      ALTER FUNCTION app.f() OWNER TO ${owner}; ALTER TYPE app.e OWNER TO ${owner};
      GRANT USAGE ON SCHEMA app TO ${reader};
      GRANT SELECT, INSERT ON app.t TO ${reader} WITH GRANT OPTION; GRANT SELECT ON app.v TO ${reader}; GRANT USAGE ON SEQUENCE app.s TO ${reader};
      REVOKE EXECUTE ON FUNCTION app.f() FROM PUBLIC; GRANT EXECUTE ON FUNCTION app.f() TO ${reader};
      REVOKE USAGE ON TYPE app.e FROM PUBLIC;
    `);
    const config = pair.config({ objects: { schemas: ['app'], ownership: true } });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);
    const { plan } = await migrateSchema(config, runToken);
    expect(plan.byKind).toMatchObject({ owner: 6, grant: 6 });

    const acl = `SELECT 'schema' AS k, nspname::text AS n, pg_get_userbyid(nspowner) AS o, nspacl::text AS a FROM pg_namespace WHERE nspname = 'app'
                 UNION ALL SELECT 'rel', relname, pg_get_userbyid(relowner), relacl::text FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind <> 'i'
                 UNION ALL SELECT 'proc', proname, pg_get_userbyid(proowner), proacl::text FROM pg_proc WHERE pronamespace = 'app'::regnamespace
                 UNION ALL SELECT 'type', typname, pg_get_userbyid(typowner), typacl::text FROM pg_type WHERE typnamespace = 'app'::regnamespace AND typtype = 'e'
                 ORDER BY 1, 2`;
    // PostgreSQL 17 added MAINTAIN (m) to the owner's default table privileges.
    const normalize = (rows: Record<string, unknown>[]) => rows.map((r) => ({ ...r, a: String(r.a).replace(/=arwdDxtm\//g, '=arwdDxt/') }));
    const [src, dst] = await Promise.all([pair.source.sql(acl), pair.destination.sql(acl)]);
    expect(src.filter((r) => r.o === owner)).toHaveLength(6);
    expect(normalize(dst)).toEqual(normalize(src));
  });
});

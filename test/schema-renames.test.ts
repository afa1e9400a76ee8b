// Renames in schema migration (issue 3): schema, table and column renames and
// name case `lower` reach every statement; SQL that cannot be rewritten safely
// is reported instead of created; names that clash after mapping stop the plan
// before anything is created.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { planSchema } from '../activities/schema';
import { verifySchema } from '../activities/verify-schema';
import { makePair, uid, type Side } from './harness/env';
import { applySchemaSource, claimDestination, migrateSchema, SCHEMA_SOURCE_SCHEMAS } from './fixtures/schema-source';

// Views and functions over renamed objects: one the planner can follow, one it cannot.
const RENAME_EXTRAS = `
CREATE VIEW app.user_names AS SELECT x.name FROM (SELECT u.name FROM app."user" u) x;
CREATE VIEW app.big_orders AS SELECT o.order_no, u.name AS customer FROM app."order" o JOIN app."user" u ON u.id = o.user_id WHERE o.qty > 10;
CREATE FUNCTION app.order_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM app."order" $$;
`;

const RENAMES = {
  schemas: SCHEMA_SOURCE_SCHEMAS,
  nameCase: 'lower' as const,
  rename: {
    schemas: { 'Billing Ops': 'billing' },
    tables: { 'app."order"': 'app.purchase' },
    columns: { 'app."user".name': 'full_name' },
  },
};

async function names(side: Side, sql: string): Promise<string[]> {
  return (await side.sql<{ n: string }>(sql)).map((r) => r.n).sort();
}

const userSchemas = (side: Side) =>
  names(side, `SELECT nspname AS n FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public', 'pgshift')`);

describe('schema migration with renames', () => {
  it('creates the mapped names and reports what it cannot rewrite safely', async () => {
    const pair = await makePair();
    await applySchemaSource(pair);
    await pair.source.sql(RENAME_EXTRAS);
    const config = pair.config({ objects: RENAMES });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);

    const { plan, stages } = await migrateSchema(config, runToken);
    for (const p of Object.values(stages)) expect(p).toMatchObject({ skipped: 0, existing: 0, applied: p!.total });

    const dst = pair.destination;
    expect(await userSchemas(dst)).toEqual(['app', 'billing']);
    expect(await names(dst, `SELECT relname AS n FROM pg_class WHERE relnamespace = 'billing'::regnamespace AND relkind = 'r'`)).toEqual(['invoice lines']);
    expect(
      await names(
        dst,
        `SELECT attname AS n FROM pg_attribute WHERE attrelid = 'billing."invoice lines"'::regclass AND attname IN ('order', 'region', 'Order', 'Region')`,
      ),
    ).toEqual(['order', 'region']);
    expect(await names(dst, `SELECT typname AS n FROM pg_type WHERE typnamespace = 'billing'::regnamespace AND typtype = 'd'`)).toEqual(['money amount']);
    expect(await names(dst, `SELECT relname AS n FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relname IN ('order', 'purchase')`)).toEqual([
      'purchase',
    ]);
    expect(await names(dst, `SELECT attname AS n FROM pg_attribute WHERE attrelid = 'app."user"'::regclass AND attnum > 0`)).toEqual(
      ['aliases', 'code', 'created_at', 'email', 'full_name', 'home', 'id', 'moods'].sort(),
    );
    // Keys, FKs and indexes name the mapped columns and tables.
    const fk = await dst.sql<{ def: string }>(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'lines_order_fk'`);
    expect(fk[0].def).toBe('FOREIGN KEY (region, "order") REFERENCES app.purchase(region, order_no) ON UPDATE CASCADE');
    expect(await names(dst, `SELECT indexrelid::regclass::text AS n FROM pg_index WHERE indrelid = 'billing."invoice lines"'::regclass`)).toEqual(
      ['billing."invoice lines doc"', 'billing."invoice lines_pkey"', 'billing.lines_key_lower', 'billing.lines_positive', 'billing.lines_u'].sort(),
    );

    // Views over renamed objects that the planner can follow are rewritten and keep working.
    const big = await dst.sql<{ def: string }>(`SELECT pg_get_viewdef('app.big_orders'::regclass, true) AS def`);
    expect(big[0].def).toContain('u.full_name AS customer');
    expect(big[0].def).toContain('FROM app.purchase o');
    await dst.sql('SELECT * FROM app.active_user_orders, app.big_orders, app.order_totals');
    const active = await names(dst, `SELECT attname AS n FROM pg_attribute WHERE attrelid = 'app.active_users'::regclass`);
    expect(active).toEqual(['email', 'id', 'name']);

    // The one it cannot follow (a renamed column through a subquery alias) is reported, not created.
    expect(plan.warnings.some((w) => w.startsWith('view app.user_names not created') && w.includes('x.name'))).toBe(true);
    expect(await names(dst, `SELECT relname AS n FROM pg_class WHERE relname = 'user_names'`)).toEqual([]);
    // A function body is opaque text: it is copied, and the renamed names it mentions are reported.
    expect(plan.warnings).toContain('function app.order_count(): its body mentions renamed order (now purchase); the body is copied unchanged, review it');
    // Triggers are off by default: reported with the mapped names.
    expect(plan.warnings).toContain('trigger order_touch on app.purchase not created (objects.triggers is false)');
    expect(plan.warnings).toHaveLength(3);

    // Schema verification compares in destination names: only what the plan reported is missing.
    const verification = await verifySchema({ config });
    expect(verification.differences).toEqual([{ kind: 'view', object: 'app.user_names', difference: 'missing on the destination' }]);
    expect(verification.compared.column).toBeGreaterThan(40);
  });

  it('honours include / exclude, reporting what depends on a table that is left out', async () => {
    const pair = await makePair();
    await applySchemaSource(pair);
    // A type of a schema that is not selected: reported, and used as it is on the destination.
    const outside = `CREATE SCHEMA other; CREATE TYPE other.color AS ENUM ('red'); GRANT USAGE ON SCHEMA other TO PUBLIC`;
    await pair.source.sql(`${outside}; ALTER TABLE app.tags ADD COLUMN color other.color`);
    await pair.destination.sql(outside);
    const config = pair.config({ objects: { schemas: SCHEMA_SOURCE_SCHEMAS, exclude: ['app."user"', 'app.events'] } });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);

    const { plan } = await migrateSchema(config, runToken);
    expect([...plan.warnings].sort()).toEqual(
      [
        'foreign key order_user_id_fkey on app."order" not created: the table it references is not migrated',
        'trigger order_touch on app."order" not created (objects.triggers is false)',
        'view app.active_users not created: it depends on table app."user" (excluded)',
        'view app.active_user_orders not created: it depends on view app.active_users (not created)',
        'type other.color is outside the selected schemas but table app.tags needs it: it must exist on the destination',
      ].sort(),
    );
    const tables = await names(
      pair.destination,
      `SELECT relname AS n FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind IN ('r', 'p', 'v', 'm')`,
    );
    expect(tables).toEqual(['bookings', 'counters', 'order', 'order_totals', 'tags']);
  });

  it('refuses names that clash or grow too long after mapping, before creating anything', async () => {
    const pair = await makePair();
    await pair.source.sql(`
      CREATE SCHEMA app;
      CREATE TABLE app.tags (id int PRIMARY KEY);
      CREATE TABLE app."TAGS" (id int PRIMARY KEY);
      CREATE TABLE app.t (id int PRIMARY KEY, "Code" text, code text, v int);
    `);
    const long = 'a_column_name_that_is_much_longer_than_the_sixty_three_bytes_limit';
    const config = pair.config({ objects: { schemas: ['app'], nameCase: 'lower', rename: { columns: { 'app.t.v': long } } } });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);

    const err = await planSchema({ config, runToken }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/^names clash or are too long on the destination .*nothing was created/);
    const problems = failure.message.replace(/^.*objects\.rename: /, '').split('; ');
    expect(problems.sort()).toEqual(
      [
        'table app."TAGS" and table app.tags would all be app.tags on the destination',
        'index app."TAGS_pkey" and index app.tags_pkey would all be app.tags_pkey on the destination',
        'column app.t."Code" and column app.t.code would all be app.t.code on the destination',
        `column app.t.v would be named ${long} on the destination, longer than 63 bytes`,
      ].sort(),
    );
    expect(await userSchemas(pair.destination)).toEqual([]);
    expect(await names(pair.destination, `SELECT to_regclass('pgshift.schema_plans')::text AS n`)).toEqual([null]);
  });
});

// DDL replication on real clusters: DDL on the source during change capture,
// interleaved with writes on the same tables, is captured by the event trigger
// (pgshift.ddl_log, in the publication) and replayed on the destination at its
// position in the stream; the destination's data and catalogs end up equal to
// the source's (schema verification clean). DDL capture needs a superuser: the
// source role of these tests is SUPERUSER (the harness's usual role is not).
import { describe, expect, it } from 'vitest';
import { applyChanges } from '../activities/capture/apply';
import { verifySchema } from '../activities/verify-schema';
import { releaseSource } from '../activities/capture/prepare-source';
import type { ConfigInput } from '../lib/config';
import { migrateUpToApply } from './harness/full-load';
import { capturePair, type CapturePair } from './harness/capture';
import { clusters } from './harness/env';
import { sourceInsertLsn, tableRows } from './harness/capture-compare';

const SCHEMA = `
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, qty int NOT NULL DEFAULT 1, name varchar(20), note text DEFAULT 'none', old text);
CREATE TABLE app.orders (id int PRIMARY KEY, item_id int, amount int);
CREATE TABLE app.gone (id int PRIMARY KEY, v text);
CREATE TABLE app.emptied (id int PRIMARY KEY, v text);
INSERT INTO app.items SELECT g, g, 'item ' || g, 'n' || g, 'o' || g FROM generate_series(1, 50) g;
INSERT INTO app.orders SELECT g, 1 + g % 50, g * 10 FROM generate_series(1, 100) g;
INSERT INTO app.gone VALUES (1, 'a'); INSERT INTO app.emptied SELECT g, 'e' FROM generate_series(1, 10) g`;

/** The acceptance sequence: each DDL with DML on the same tables before and after it. */
export const DDL_STEPS = [
  `INSERT INTO app.items VALUES (101, 5, 'before add', 'x', 'y')`,
  `ALTER TABLE app.items ADD COLUMN color text`,
  `INSERT INTO app.items (id, qty, name, color) VALUES (102, 2, 'after add', 'red'); UPDATE app.items SET color = 'blue' WHERE id <= 5`,
  `ALTER TABLE app.items ADD COLUMN rank int NOT NULL DEFAULT 7`,
  `UPDATE app.items SET rank = 1 WHERE id = 1; INSERT INTO app.items (id, name) VALUES (103, 'ranked')`,
  `ALTER TABLE app.items ALTER COLUMN qty TYPE bigint`,
  `UPDATE app.items SET qty = 5000000000 WHERE id = 2`,
  `ALTER TABLE app.items ALTER COLUMN name TYPE text`,
  `INSERT INTO app.items (id, name) VALUES (104, repeat('long name ', 5))`,
  `ALTER TABLE app.items DROP COLUMN old`,
  `UPDATE app.items SET note = 'after drop' WHERE id = 3; DELETE FROM app.items WHERE id = 4`,
  `ALTER TABLE app.orders RENAME TO purchases`,
  `INSERT INTO app.purchases VALUES (1001, 1, 5); UPDATE app.purchases SET amount = amount + 1 WHERE id <= 10`,
  `ALTER TABLE app.purchases RENAME COLUMN amount TO total`,
  `UPDATE app.purchases SET total = 0 WHERE id = 11; INSERT INTO app.purchases (id, item_id, total) VALUES (1002, 2, 7)`,
  `ALTER TABLE app.purchases ADD CONSTRAINT total_positive CHECK (total >= 0)`,
  `INSERT INTO app.purchases VALUES (1003, 3, 9)`,
  `ALTER TABLE app.items ALTER COLUMN note DROP DEFAULT`,
  `INSERT INTO app.items (id, name) VALUES (105, 'no default')`,
  `CREATE INDEX items_color ON app.items (color)`,
  `UPDATE app.items SET color = 'green' WHERE id = 6`,
  `CREATE TABLE app.fresh (id int PRIMARY KEY, v text NOT NULL, at timestamptz DEFAULT now())`,
  `INSERT INTO app.fresh (id, v) SELECT g, 'f' || g FROM generate_series(1, 20) g; UPDATE app.fresh SET v = 'changed' WHERE id = 3; DELETE FROM app.fresh WHERE id = 4`,
  `CREATE TABLE app.loose (a int, b text)`,
  `INSERT INTO app.loose VALUES (1, 'x'), (2, 'y'); UPDATE app.loose SET b = 'z' WHERE a = 2`,
  `INSERT INTO app.gone VALUES (2, 'b')`,
  `DROP TABLE app.gone`,
  `INSERT INTO app.emptied VALUES (11, 'e')`,
  `TRUNCATE app.emptied`,
  `INSERT INTO app.emptied VALUES (1, 'again')`,
  // DDL and DML in one transaction, in stream order
  `BEGIN; INSERT INTO app.items (id, name) VALUES (106, 'in txn'); ALTER TABLE app.items ADD COLUMN late int; UPDATE app.items SET late = 1 WHERE id = 106; COMMIT`,
];

export const DDL_TABLES: { source: string; destination?: string; orderBy: string }[] = [
  { source: 'app.items', orderBy: 'id' },
  { source: 'app.purchases', orderBy: 'id' },
  { source: 'app.emptied', orderBy: 'id' },
  { source: 'app.fresh', orderBy: 'id' },
  { source: 'app.loose', orderBy: 'a' },
];

async function migrated(pair: CapturePair, overrides: Partial<ConfigInput> = {}) {
  const config = pair.config({ objects: { schemas: ['app'] }, acknowledgeWarnings: ['primary-keys'], ...overrides });
  return { config, prepared: await migrateUpToApply(config, pair.runToken) };
}

const SUPER = { sourceRoleOptions: 'SUPERUSER REPLICATION' };

describe('DDL replication', () => {
  // 11 → 14 too: the event-trigger function and the shapes it records must work on the oldest supported source.
  it.each([
    ['15', '18'],
    ['11', '14'],
  ] as const)(
    'replays the DDL sequence in stream order, interleaved with writes: data equal, schema verification clean (%s → %s)',
    async (from, to) => {
      const cs = clusters();
      const pair = await capturePair({ ...SUPER, source: cs[`pg${from}`], destination: cs[`pg${to}`] });
      await pair.source.sql(SCHEMA);
      const { config, prepared } = await migrated(pair);
      expect(prepared.ddlCapture).toBe(true);
      // First round before any DDL, so the apply's table view is recorded as of the stream.
      await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
      for (const step of DDL_STEPS) await pair.source.sql(step);
      const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
      expect(r.ddl?.blocked ?? null).toBeNull();
      expect(r.ddl?.events.filter((e) => e.what !== 'replayed')).toEqual([]);
      expect(r.ddl!.replayed).toBeGreaterThanOrEqual(13);
      for (const t of DDL_TABLES) {
        expect(await tableRows(pair.destination, t.destination ?? t.source, t.orderBy), t.source).toEqual(await tableRows(pair.source, t.source, t.orderBy));
      }
      expect(await pair.destination.sql(`SELECT to_regclass('app.gone') AS t`)).toEqual([{ t: null }]);
      const loose = await pair.source.sql<{ r: string }>(`SELECT relreplident::text AS r FROM pg_class WHERE oid = 'app.loose'::regclass`);
      expect(loose[0].r).toBe('f');
      const v = await verifySchema({ config });
      expect(v.differences).toEqual([]);
      // Release removes the event triggers and the function.
      await releaseSource({ config });
      expect(await pair.source.sql(`SELECT evtname FROM pg_event_trigger WHERE evtname LIKE $1`, [`%${config.name}`])).toEqual([]);
    },
    90_000,
  );
});

describe('DDL replication with a name mapping and what is not replayed', () => {
  it('lands on the mapped names (rename map, nameCase lower); an unsupported DDL is reported, a refused one stops the apply until skipped', async () => {
    const pair = await capturePair(SUPER);
    await pair.source.sql(`
      CREATE SCHEMA "App";
      CREATE TABLE "App"."Items" ("Id" int PRIMARY KEY, "Qty" int, "Name" text);
      INSERT INTO "App"."Items" SELECT g, g, 'n' || g FROM generate_series(1, 10) g`);
    const { config } = await migrated(pair, {
      objects: { schemas: ['App'], nameCase: 'lower', rename: { schemas: { App: 'shop' }, tables: {}, columns: { '"App"."Items"."Qty"': 'quantity' } } },
    });
    await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
    await pair.source.sql(`
      ALTER TABLE "App"."Items" ADD COLUMN "Color" text DEFAULT 'Red';
      INSERT INTO "App"."Items" VALUES (11, 11, 'eleven', 'Blue');
      ALTER TABLE "App"."Items" ALTER COLUMN "Qty" TYPE bigint;
      ALTER TABLE "App"."Items" RENAME COLUMN "Name" TO "Title";
      CREATE INDEX "Items_Color" ON "App"."Items" ("Color");
      ALTER TABLE "App"."Items" ADD CONSTRAINT "Qty_Positive" CHECK ("Qty" > 0);
      CREATE TABLE "App"."New" ("K" int PRIMARY KEY, "V" text);
      INSERT INTO "App"."New" VALUES (1, 'one');
      UPDATE "App"."Items" SET "Title" = 'renamed' WHERE "Id" = 1;
      ALTER TABLE "App"."Items" SET (fillfactor = 90)`);
    const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
    expect(r.ddl?.blocked ?? null).toBeNull();
    // The storage parameter is not replayed, and says so.
    expect(r.ddl!.events.filter((e) => e.what === 'reported').map((e) => e.statement)).toEqual([expect.stringContaining('fillfactor')]);
    const cols = await pair.destination.sql<{ c: string }>(
      `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) AS c FROM pg_attribute WHERE attrelid = 'shop.items'::regclass AND attnum > 0 AND NOT attisdropped`,
    );
    expect(cols[0].c).toBe('id integer, quantity bigint, title text, color text');
    expect(await tableRows(pair.destination, 'shop.items', 'id', 'id IN (1, 11)')).toEqual(['(1,1,renamed,Red)', '(11,11,eleven,Blue)']);
    expect(await tableRows(pair.destination, 'shop.new', 'k')).toEqual(['(1,one)']);
    const idx = await pair.destination.sql(`SELECT indexname FROM pg_indexes WHERE schemaname = 'shop' AND indexname = 'items_color'`);
    expect(idx).toHaveLength(1);
    const con = await pair.destination.sql<{ d: string }>(`SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conname = 'qty_positive'`);
    expect(con[0].d).toBe('CHECK ((quantity > 0))');

    // A DDL the destination refuses (a row there violates it): the apply stops at it, names it, and goes on once skipped.
    await pair.destination.sql(`INSERT INTO shop.items VALUES (-1, 1, 'only here', NULL)`);
    await pair.source.sql(
      `ALTER TABLE "App"."Items" ADD CONSTRAINT "Title_Known" CHECK ("Title" <> 'only here'); INSERT INTO "App"."Items" VALUES (12, 12, 'after', NULL)`,
    );
    const target = await sourceInsertLsn(pair.source);
    const stopped = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target, maxSeconds: 5 });
    expect(stopped.ddl!.blocked).toMatchObject({ what: 'blocked', tag: 'ALTER TABLE', statement: expect.stringContaining('Title_Known') });
    expect(stopped.ddl!.blocked!.reason).toMatch(/destination refused/);
    expect(await tableRows(pair.destination, 'shop.items', 'id', 'id = 12')).toEqual([]);
    const again = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target, ddlSkips: [stopped.ddl!.blocked!.entry] });
    expect(again.ddl!.blocked).toBeNull();
    expect(again.ddl!.events.map((e) => e.what)).toEqual(['skipped']);
    expect(await tableRows(pair.destination, 'shop.items', 'id', 'id = 12')).toEqual(['(12,12,after,)']);
  }, 90_000);
});

// Schema verification (issue 3, deliverable 4): after a schema migration the
// production comparison finds no difference, 15 → 18 and 15 → 15 and with
// renames; every kind of tampering on the destination is reported by name.
import { describe, expect, it } from 'vitest';
import { verifySchema } from '../activities/verify-schema';
import type { SchemaVerification } from '../lib/migration-state';
import { clusters, makePair, uid } from './harness/env';
import { applySchemaSource, claimDestination, migrateSchema, SCHEMA_SOURCE_SCHEMAS } from './fixtures/schema-source';

const list = (v: SchemaVerification) => v.differences.map((d) => `${d.kind} ${d.object}: ${d.difference}`);

describe('schema verification', () => {
  for (const [label, destination] of [
    ['15 → 18', () => clusters().pg18],
    ['15 → 15', () => clusters().pg15b],
  ] as const) {
    it(`finds no difference after a schema migration (${label}), then reports each tampering`, async () => {
      const pair = await makePair({ destination: destination() });
      await applySchemaSource(pair);
      const config = pair.config({ objects: { schemas: SCHEMA_SOURCE_SCHEMAS, triggers: true } });
      const runToken = `run-${uid()}`;
      await claimDestination(config, runToken);
      await migrateSchema(config, runToken);

      const clean = await verifySchema({ config });
      expect(list(clean)).toEqual([]);
      // Every kind of object of the fixture was compared.
      expect(clean.compared).toMatchObject({
        schema: 3,
        table: 11,
        column: expect.any(Number),
        constraint: expect.any(Number),
        index: expect.any(Number),
        view: 2,
        'materialized view': 1,
        function: 4,
        procedure: 1,
        enum: 1,
        domain: 2,
        'range type': 1,
        'composite type': 1,
        sequence: 3,
        'identity sequence': 1,
        collation: 1,
        trigger: 1,
        extension: 1,
      });
      expect(clean.compared.column).toBeGreaterThan(40);

      await pair.destination.sql(`
        ALTER TABLE "Billing Ops"."Invoice Lines" ALTER COLUMN dur TYPE text;
        ALTER TABLE app."order" ALTER COLUMN price DROP DEFAULT;
        ALTER TABLE app.tags ALTER COLUMN note SET NOT NULL;
        ALTER TABLE app."order" DROP CONSTRAINT sku_format;
        DROP INDEX "Billing Ops".lines_positive;
        CREATE INDEX lines_positive ON "Billing Ops"."Invoice Lines" (ts DESC NULLS LAST) WHERE n > 1;
        ALTER TYPE app.mood ADD VALUE 'ecstatic';
        ALTER SEQUENCE app.code_seq INCREMENT 7;
        CREATE OR REPLACE VIEW app.active_users AS SELECT id, "Email", name FROM app."user" WHERE created_at > '2001-01-01';
        CREATE OR REPLACE FUNCTION app.is_valid_sku(s text) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT true $$;
        COMMENT ON TABLE app."user" IS 'people';
        CREATE TABLE app.stray (id int);
        DROP TABLE public.settings;
      `);
      const tampered = list(await verifySchema({ config }));
      const expected = [
        /^column app\.tags\.note: notNull: source "false", destination "true"/,
        /^column "Billing Ops"\."Invoice Lines"\.dur: type: source "interval", destination "text"/,
        /^column app\."order"\.price: default: source "0", destination none/,
        /^constraint sku_format on app\."order": missing on the destination/,
        /^index on "Billing Ops"\."Invoice Lines": .*WHERE \(n > \(0\)::numeric\): missing on the destination/,
        /^index on "Billing Ops"\."Invoice Lines": .*WHERE \(n > \(1\)::numeric\): exists only on the destination/,
        /^enum app\.mood: labels/,
        /^sequence app\.code_seq: increment: source "5", destination "7"/,
        /^view app\.active_users: definition/,
        /^function app\.is_valid_sku\(s text\): definition: .*SELECT true/,
        /^table app\."user": comment: source "people who order", destination "people"/,
        /^table app\.stray: exists only on the destination/,
        /^table public\.settings: missing on the destination/,
      ];
      for (const re of expected)
        expect(
          tampered.some((t) => re.test(t)),
          `${re} in\n${tampered.join('\n')}`,
        ).toBe(true);
      expect(tampered.length, tampered.join('\n')).toBe(expected.length);
    });
  }
});

// The deliberately hard source of issue 2, evaluated through the real
// EvaluationWorkflow: each problem reported item by item with the right
// verdict; after fixing or excluding them the report is clean. Evaluation is
// read-only: the source catalogs are the same afterwards and no lock or session
// of the evaluation remains.
import { describe, expect, it } from 'vitest';
import { evaluate } from '../client';
import type { ConfigInput } from '../lib/config';
import type { PrecheckId } from '../lib/precheck-catalog';
import { applySchemaSource, SCHEMA_SOURCE_SCHEMAS } from './fixtures/schema-source';
import { makePair, type Pair, temporalClient, uid, withWorker } from './harness/env';
import { recordHistories } from './harness/histories';

const HARDER = `
CREATE TABLE app.no_key (v text, n int);
CREATE UNLOGGED TABLE app.scratch (id int PRIMARY KEY, note text);
CREATE TABLE app."MixedCase Flags" ("Flag" bit(4) NOT NULL, id int PRIMARY KEY);
SELECT lo_from_bytea(0, 'a large object');
CREATE EXTENSION old_snapshot;
`;

async function catalogSnapshot(pair: Pair) {
  return pair.source.sql(`
    SELECT (SELECT string_agg(relname || ':' || relkind::text, ',' ORDER BY oid) FROM pg_class) AS classes,
           (SELECT string_agg(nspname, ',' ORDER BY oid) FROM pg_namespace) AS schemas,
           (SELECT count(*) FROM pg_proc) AS procs,
           (SELECT count(*) FROM pg_replication_slots) AS slots,
           (SELECT count(*) FROM pg_publication) AS pubs,
           (SELECT count(*) FROM pg_event_trigger) AS event_triggers,
           (SELECT count(*) FROM pg_largeobject_metadata) AS los`);
}

describe('evaluation of a deliberately hard source', () => {
  it('reports each problem with the right verdict, then comes back clean once fixed', async () => {
    const pair = await makePair();
    await applySchemaSource(pair);
    await pair.source.sql(HARDER);
    await pair.destination.sql('CREATE SCHEMA app; CREATE TABLE app.tags (name text PRIMARY KEY)');
    const client = await temporalClient();
    const taskQueue = `tq-${uid()}`;
    // Evaluated as the online migration it is meant for: change-capture requirements included.
    const raw: Partial<ConfigInput> = { taskQueue, mode: { schema: true, full: true, incremental: true }, objects: { schemas: SCHEMA_SOURCE_SCHEMAS } };
    const before = await catalogSnapshot(pair);

    const first = await withWorker(taskQueue, () => evaluate(client, pair.config(raw)));
    const r = first.report;
    const v = Object.fromEntries(r.precheck.map((p) => [p.id, p])) as Record<PrecheckId, (typeof r.precheck)[number]>;
    expect(r.verdict).toBe('incompatible');
    await recordHistories(client, first.workflowId, 'evaluation-incompatible');
    expect(v['primary-keys']).toMatchObject({ verdict: 'warn', objects: ['app.no_key'] });
    expect(v['replica-identity']).toMatchObject({ verdict: 'warn', objects: ['app.tags'] });
    expect(v['triggers-and-rules']).toMatchObject({ verdict: 'warn', objects: ['trigger order_touch on app."order"'] });
    expect(v['unlogged-tables']).toMatchObject({ verdict: 'warn', objects: ['app.scratch'] });
    expect(v['large-objects'].verdict).toBe('warn');
    expect(v['materialized-views']).toMatchObject({ verdict: 'warn', objects: ['app.order_totals'] });
    expect(v.extensions).toMatchObject({ verdict: 'fail' });
    expect(v.extensions.cause).toContain('old_snapshot');
    expect(v['existing-target-tables']).toMatchObject({ verdict: 'fail', objects: ['app.tags'] });
    for (const id of [
      'server-versions',
      'encoding',
      'source-wal-level',
      'replication-slots',
      'source-privileges',
      'selected-objects',
      'identifier-collisions',
    ] as PrecheckId[]) {
      expect(v[id].verdict, `${id}: ${v[id].cause}`).toBe('pass');
    }
    const details = r.compatibility.details.map((d) => `${d.kind} ${d.object}`);
    expect(details).toEqual(expect.arrayContaining(['extension old_snapshot', 'table app.no_key', 'table app.scratch', 'large object 1 large object(s)']));
    for (const d of r.compatibility.details) expect(d.fix.length).toBeGreaterThan(5);
    const tables = r.compatibility.overview.find((o) => o.kind === 'table')!;
    expect(tables.incompatible).toBe(2);
    expect(tables.compatible).toBeGreaterThan(5);
    // BIT columns are compatible: pgshift syncs them.
    expect(details.join()).not.toContain('MixedCase');

    // Read-only: the same catalogs, no lock or session left behind.
    expect(await catalogSnapshot(pair)).toEqual(before);
    const sessions = await pair.source.cluster.sql(`SELECT pid FROM pg_stat_activity WHERE usename = $1`, 'postgres', [pair.source.user]);
    expect(sessions).toEqual([]);

    // Fix or exclude everything, acknowledge what pgshift handles, evaluate again.
    await pair.source.sql(`ALTER TABLE app.scratch SET LOGGED; SELECT lo_unlink(oid) FROM pg_largeobject_metadata; DROP EXTENSION old_snapshot;`);
    await pair.destination.sql('DROP TABLE app.tags');
    const fixed = await withWorker(taskQueue, () =>
      evaluate(
        client,
        pair.config({
          ...raw,
          objects: { schemas: SCHEMA_SOURCE_SCHEMAS, exclude: ['app.no_key'] },
          acknowledgeWarnings: ['replica-identity', 'triggers-and-rules', 'materialized-views', 'ddl-capture', 'replica-role'],
        }),
      ),
    );
    const open = fixed.report.precheck.filter((p) => p.verdict === 'fail' || (p.verdict === 'warn' && !p.acknowledged));
    expect(open, JSON.stringify(open)).toEqual([]);
    expect(fixed.report.compatibility.details).toEqual([]);
    expect(fixed.report.verdict).toBe('compatible');
    await client.connection.close();
  });
});

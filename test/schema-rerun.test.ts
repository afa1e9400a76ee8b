// Re-running schema migration (issue 3): a stage killed half-way finishes on
// the next attempt with every statement applied exactly once; objects already
// on the destination are kept (existingTargetTables: ignore) or refused with
// a clear, non-retryable error (precheck-error).
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { applySchemaStage, planSchema } from '../activities/schema';
import { applicationName } from '../lib/io/session';
import { makePair, uid, type Pair, type Side } from './harness/env';
import { applySchemaSource, claimDestination, migrateSchema, SCHEMA_SOURCE_SCHEMAS } from './fixtures/schema-source';

/** Catalog rows of the selected schemas: a duplicate object would show up as one more. */
async function catalogCounts(side: Side): Promise<Record<string, number>> {
  const [r] = await side.sql<Record<string, number>>(
    `WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = ANY($1))
     SELECT (SELECT count(*)::int FROM pg_class WHERE relnamespace IN (SELECT oid FROM s)) AS classes,
            (SELECT count(*)::int FROM pg_constraint WHERE connamespace IN (SELECT oid FROM s) AND contype <> 'n') AS constraints,
            (SELECT count(*)::int FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace IN (SELECT oid FROM s)) AS indexes,
            (SELECT count(*)::int FROM pg_proc WHERE pronamespace IN (SELECT oid FROM s)) AS functions,
            (SELECT count(*)::int FROM pg_type WHERE typnamespace IN (SELECT oid FROM s)) AS types,
            (SELECT count(*)::int FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace IN (SELECT oid FROM s) AND NOT t.tgisinternal) AS triggers`,
    [SCHEMA_SOURCE_SCHEMAS],
  );
  return r;
}

async function statementStates(pair: Pair): Promise<Record<string, number>> {
  const rows = await pair.destination.sql<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM pgshift.schema_statements WHERE migration = $1 GROUP BY state',
    [pair.name],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** Wait until the applying backend blocks on `seq`'s row lock, then terminate it (a worker dying mid-stage). */
async function killWhenBlocked(pair: Pair, appName: string): Promise<void> {
  // Polled from fresh sessions: pg_stat_activity is frozen for the length of a transaction.
  for (let i = 0; i < 200; i++) {
    const r = await pair.destination.sql<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`,
      [appName],
    );
    if (r.length) {
      await pair.destination.sql('SELECT pg_terminate_backend($1)', [r[0].pid]);
      return;
    }
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error('the applying backend never blocked');
}

describe('re-running schema migration', () => {
  it('finishes a stage interrupted half-way, applying every statement exactly once', async () => {
    const pair = await makePair();
    await applySchemaSource(pair);
    const config = pair.config({ objects: { schemas: SCHEMA_SOURCE_SCHEMAS, triggers: true } });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);
    const plan = await planSchema({ config, runToken });
    const beforeData = plan.byStage['before-data'];

    // Hold the row of a statement in the middle of before-data: the applier blocks there, mid-stage, and is killed.
    const [{ seq }] = await pair.destination.sql<{ seq: number }>(
      `SELECT seq FROM pgshift.schema_statements WHERE migration = $1 AND stage = 'before-data' ORDER BY seq OFFSET $2 LIMIT 1`,
      [pair.name, Math.floor(beforeData / 2)],
    );
    const blocker = await pair.destination.cluster.connect(pair.destination.database);
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM pgshift.schema_statements WHERE migration = $1 AND seq = $2 FOR UPDATE', [pair.name, seq]);
      const applying = applySchemaStage({ config, runToken, stage: 'before-data' });
      const outcome = applying.then(
        () => 'finished',
        (e: Error) => e.message,
      );
      await killWhenBlocked(pair, applicationName('schema', config.name));
      expect(await outcome).toMatch(/terminat/i);
      await blocker.query('ROLLBACK');
    } finally {
      await blocker.end();
    }
    const half = await statementStates(pair);
    expect(half).toEqual({ applied: Math.floor(beforeData / 2), pending: plan.statements - Math.floor(beforeData / 2) });

    // The next attempt: the same plan, the rest of the stage, then the other stages.
    const again = await migrateSchema(config, runToken);
    expect(again.plan).toEqual({ ...plan, reused: true });
    expect(again.stages['before-data']).toEqual({ total: beforeData, skipped: half.applied, applied: beforeData - half.applied, existing: 0 });
    expect(again.stages.keys).toMatchObject({ skipped: 0, existing: 0 });
    expect(await statementStates(pair)).toEqual({ applied: plan.statements });

    // No duplicates: the destination holds exactly what the source holds.
    expect(await catalogCounts(pair.destination)).toEqual(await catalogCounts(pair.source));

    // Once more, everything is already done.
    const third = await migrateSchema(config, runToken);
    for (const [stage, p] of Object.entries(third.stages))
      expect(p, stage).toEqual({ total: plan.byStage[stage as keyof typeof plan.byStage], applied: 0, skipped: p!.total, existing: 0 });
  });

  /** The destination already has app.tags (owned by the destination role, as a user would have created it). */
  const preExisting = (pair: Pair) =>
    pair.destination.sql(`CREATE SCHEMA app AUTHORIZATION ${pair.destination.user}; CREATE TABLE app.tags (name text NOT NULL, note text);
                          ALTER TABLE app.tags OWNER TO ${pair.destination.user}`);

  it('keeps a table that already exists on the destination with existingTargetTables: ignore', async () => {
    const pair = await makePair();
    await applySchemaSource(pair);
    await preExisting(pair);
    const config = pair.config({ objects: { schemas: SCHEMA_SOURCE_SCHEMAS }, existingTargetTables: 'ignore' });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);

    const { stages } = await migrateSchema(config, runToken);
    expect(stages['before-data']).toMatchObject({ existing: 1, skipped: 0 });
    expect(stages.keys).toMatchObject({ existing: 0 });
    const existing = await pair.destination.sql<{ kind: string; object: string }>(
      `SELECT kind, object FROM pgshift.schema_statements WHERE migration = $1 AND state = 'existing'`,
      [pair.name],
    );
    expect(existing).toEqual([{ kind: 'table', object: 'app.tags' }]);
    // Its key was still added: the table is usable as a replication target.
    const key = await pair.destination.sql(`SELECT 1 FROM pg_constraint WHERE conrelid = 'app.tags'::regclass AND conname = 'tags_name_key'`);
    expect(key).toHaveLength(1);
  });

  it('refuses a table that already exists on the destination with existingTargetTables: precheck-error', async () => {
    const pair = await makePair();
    await applySchemaSource(pair);
    await preExisting(pair);
    const config = pair.config({ objects: { schemas: SCHEMA_SOURCE_SCHEMAS } });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);
    await planSchema({ config, runToken });

    const err = await applySchemaStage({ config, runToken, stage: 'before-data' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toMatch(
      /^table app\.tags already exists on the destination .*drop it there and retry, or set existingTargetTables: ignore/,
    );
  });
});

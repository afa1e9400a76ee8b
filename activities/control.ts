// pgshift's control objects on the destination: schema `pgshift` with the
// run table that carries the fencing token. Every destination
// write of a migration runs inside `fenced()`: it share-locks the run row and
// checks the token, so a stale run (after cutover, abort or a newer run) fails
// instead of writing — even an activity retried days later.
import type { Client } from 'pg';
import { writerApplicationNames } from '../lib/io/session';

export const CONTROL_SCHEMA = 'pgshift';

export class FencedError extends Error {
  constructor(migration: string, why: string) {
    super(`migration ${migration} is fenced on the destination (${why}); this run may no longer write there`);
    this.name = 'FencedError';
  }
}

/** Create the control schema and tables if missing (idempotent, safe to race). */
export async function ensureControlSchema(c: Client): Promise<void> {
  // Serialise concurrent first-time creation by several workers.
  await c.query('SELECT pg_advisory_lock(hashtext($1))', ['pgshift control schema']);
  try {
    await c.query(`
      CREATE SCHEMA IF NOT EXISTS pgshift;
      COMMENT ON SCHEMA pgshift IS 'pgshift migration control data; drop after the migration is finished';
      CREATE TABLE IF NOT EXISTS pgshift.runs (
        migration   text PRIMARY KEY,
        run_token   text NOT NULL,
        state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cutover', 'aborted')),
        updated_at  timestamptz NOT NULL DEFAULT now()
      );
    `);
  } finally {
    await c.query('SELECT pg_advisory_unlock(hashtext($1))', ['pgshift control schema']);
  }
}

/**
 * Register this run as the one allowed to write. A newer token replaces an
 * older one (the older run is fenced out); a run that was cut over or aborted
 * stays fenced: starting again needs a new migration name or a release.
 */
export async function claimRun(c: Client, migration: string, runToken: string): Promise<void> {
  const r = await c.query<{ run_token: string; state: string }>(
    `INSERT INTO pgshift.runs (migration, run_token) VALUES ($1, $2)
     ON CONFLICT (migration) DO UPDATE SET run_token = EXCLUDED.run_token, updated_at = now()
       WHERE pgshift.runs.state = 'active'
     RETURNING run_token, state`,
    [migration, runToken],
  );
  if (!r.rowCount) {
    const s = await c.query<{ state: string }>('SELECT state FROM pgshift.runs WHERE migration = $1', [migration]);
    throw new FencedError(migration, `it was ${s.rows[0]?.state === 'cutover' ? 'cut over' : 'aborted'}`);
  }
}

/** Check the token inside the caller's open transaction; holds a share lock until commit. */
export async function assertNotFenced(c: Client, migration: string, runToken: string): Promise<void> {
  const r = await c.query<{ run_token: string; state: string }>('SELECT run_token, state FROM pgshift.runs WHERE migration = $1 FOR SHARE', [migration]);
  const row = r.rows[0];
  if (!row) throw new FencedError(migration, 'no run is registered');
  if (row.state !== 'active') throw new FencedError(migration, `state is ${row.state}`);
  if (row.run_token !== runToken) throw new FencedError(migration, 'a newer run holds the token');
}

/** Run `fn` in one destination transaction that commits only if this run still holds the token. */
export async function fenced<T>(c: Client, migration: string, runToken: string, fn: () => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    await assertNotFenced(c, migration, runToken);
    const out = await fn();
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** Fence the migration: waits for in-flight fenced transactions, then no write of any run gets through. */
export async function fence(c: Client, migration: string, state: 'cutover' | 'aborted'): Promise<void> {
  // Upsert: a migration aborted before it ever claimed a run is fenced all the same.
  const upsert = () =>
    c.query(
      `INSERT INTO pgshift.runs (migration, run_token, state) VALUES ($1, 'fenced', $2)
       ON CONFLICT (migration) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`,
      [migration, state],
    );
  // In-flight writes of this migration hold the run row shared until they
  // commit; rather than wait for a long chunk or index build, end every writer
  // session of the migration (lib/io/session.ts names them): their
  // transactions roll back, exactly as if the worker had died.
  await c.query("SET lock_timeout = '2s'");
  try {
    await upsert();
  } catch (e) {
    if ((e as { code?: string }).code !== '55P03') throw e;
    await c.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ANY($1)`,
      [writerApplicationNames(migration)],
    );
    await c.query("SET lock_timeout = '30s'");
    await upsert();
  } finally {
    await c.query('RESET lock_timeout');
  }
}

// The destination's record of change capture, in the control schema: one row
// per migration with its slot, the slot's consistent point (where applying
// starts) and the applied position — the commit end LSN of the last source
// transaction whose changes are committed on the destination. The applied
// position is only ever written in the same destination transaction as the
// data it covers, so after any crash it says exactly what is in.
import type { Client } from 'pg';
import { CONTROL_SCHEMA, ensureControlSchema } from '../control';

export interface CaptureRow {
  slotName: string;
  publication: string;
  startLsn: string;
  appliedLsn: string;
  /** Source clock of the newest applied heartbeat (timestamptz text), null before the first. */
  sourceTime: string | null;
}

export async function ensureCaptureTable(c: Client): Promise<void> {
  await ensureControlSchema(c);
  await c.query('SELECT pg_advisory_lock(hashtext($1))', ['pgshift control schema']);
  try {
    await c.query(`
      CREATE TABLE IF NOT EXISTS ${CONTROL_SCHEMA}.capture (
        migration    text PRIMARY KEY,
        slot_name    text NOT NULL,
        publication  text NOT NULL,
        start_lsn    pg_lsn NOT NULL,
        applied_lsn  pg_lsn NOT NULL,
        source_time  timestamptz,
        updated_at   timestamptz NOT NULL DEFAULT now()
      )`);
  } finally {
    await c.query('SELECT pg_advisory_unlock(hashtext($1))', ['pgshift control schema']);
  }
}

export async function readCapture(c: Client, migration: string): Promise<CaptureRow | null> {
  const r = await c.query<CaptureRow>(
    `SELECT slot_name AS "slotName", publication, start_lsn::text AS "startLsn", applied_lsn::text AS "appliedLsn",
            to_char(source_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS "sourceTime"
       FROM ${CONTROL_SCHEMA}.capture WHERE migration = $1`,
    [migration],
  );
  return r.rows[0] ?? null;
}

/**
 * Record a (new) slot. A slot created again starts a new stream: its applied
 * position restarts at the new consistent point.
 */
export async function recordSlot(c: Client, migration: string, slotName: string, publication: string, startLsn: string): Promise<void> {
  await c.query(
    `INSERT INTO ${CONTROL_SCHEMA}.capture (migration, slot_name, publication, start_lsn, applied_lsn)
     VALUES ($1, $2, $3, $4::pg_lsn, $4::pg_lsn)
     ON CONFLICT (migration) DO UPDATE SET slot_name = EXCLUDED.slot_name, publication = EXCLUDED.publication,
       start_lsn = EXCLUDED.start_lsn, applied_lsn = EXCLUDED.applied_lsn, source_time = NULL, updated_at = now()
       WHERE ${CONTROL_SCHEMA}.capture.slot_name IS DISTINCT FROM EXCLUDED.slot_name
          OR ${CONTROL_SCHEMA}.capture.start_lsn IS DISTINCT FROM EXCLUDED.start_lsn`,
    [migration, slotName, publication, startLsn],
  );
}

export class ApplyTakenOverError extends Error {
  constructor(migration: string) {
    super(`another apply of migration ${migration} moved the applied position; this one stops (a new attempt resumes from there)`);
    this.name = 'ApplyTakenOverError';
  }
}

/**
 * Advance the applied position inside the caller's transaction, from the
 * position this apply last committed: if another apply moved it meanwhile,
 * fail, so two appliers can never interleave.
 */
export async function advanceApplied(c: Client, migration: string, from: string, to: string, sourceTime: string | null): Promise<void> {
  const r = await c.query(
    `UPDATE ${CONTROL_SCHEMA}.capture SET applied_lsn = $3::pg_lsn, source_time = coalesce($4::timestamptz, source_time), updated_at = now()
      WHERE migration = $1 AND applied_lsn = $2::pg_lsn`,
    [migration, from, to, sourceTime],
  );
  if (r.rowCount !== 1) throw new ApplyTakenOverError(migration);
}

/**
 * The apply's view of its tables (source columns, destination names and types,
 * key) as of the applied position, once DDL has been replayed or the first round
 * ran: written in the destination transaction of each replayed DDL, so a restart
 * maps the stream as of its resume position, not as of the source's catalog now.
 */
export async function readTablesView<T>(c: Client, migration: string): Promise<T[] | null> {
  const t = await c.query<{ t: string | null }>(`SELECT to_regclass('${CONTROL_SCHEMA}.capture_tables')::text AS t`);
  if (!t.rows[0].t) return null;
  const r = await c.query<{ tables: T[] }>(`SELECT tables FROM ${CONTROL_SCHEMA}.capture_tables WHERE migration = $1`, [migration]);
  return r.rows[0]?.tables ?? null;
}

export async function writeTablesView<T>(c: Client, migration: string, tables: T[]): Promise<void> {
  const t = await c.query<{ t: string | null }>(`SELECT to_regclass('${CONTROL_SCHEMA}.capture_tables')::text AS t`);
  if (!t.rows[0].t) {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['pgshift control schema']);
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${CONTROL_SCHEMA}.capture_tables (migration text PRIMARY KEY, tables jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
    );
  }
  await c.query(
    `INSERT INTO ${CONTROL_SCHEMA}.capture_tables (migration, tables) VALUES ($1, $2::jsonb)
     ON CONFLICT (migration) DO UPDATE SET tables = EXCLUDED.tables, updated_at = now()`,
    [migration, JSON.stringify(tables)],
  );
}

// The ordered plan, stored on the destination (schema pgshift) so that any
// worker applies the same statements and every outcome survives a crash.
import type { Client } from 'pg';
import type { SchemaStage } from '../../lib/migration-state';
import { ensureControlSchema } from '../control';
import { STAGES, type Statement } from './statement';

export type StatementState = 'pending' | 'applied' | 'existing';

export interface StoredStatement {
  seq: number;
  stage: SchemaStage;
  kind: string;
  object: string;
  sql: string;
  state: StatementState;
}

export interface PlanSummaryRow {
  statements: number;
  byStage: Record<SchemaStage, number>;
  byKind: Record<string, number>;
  warnings: string[];
}

export async function ensurePlanTables(dst: Client): Promise<void> {
  // Already there (every call but the first): no DDL. The ALTER TABLE below takes its
  // table's exclusive lock even when the column exists, so it waits for every open
  // transaction that locked a statement row — a key or index build running in another
  // session — and index builds side by side would run one after the other.
  const ready = await dst.query<{ ready: boolean }>(
    `SELECT to_regclass('pgshift.schema_table_builds') IS NOT NULL
            AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('pgshift.schema_statements')
                    AND attname IN ('on_table', 'ref_table') AND NOT attisdropped) = 2 AS ready`,
  );
  if (ready.rows[0].ready) return;
  await ensureControlSchema(dst);
  // Serialise first-time creation by concurrent workers (CREATE ... IF NOT EXISTS can still race).
  await dst.query('SELECT pg_advisory_lock(hashtext($1))', ['pgshift schema plan tables']);
  try {
    await dst.query(`
      CREATE TABLE IF NOT EXISTS pgshift.schema_plans (
        migration   text PRIMARY KEY,
        planned_at  timestamptz NOT NULL DEFAULT now(),
        source      text NOT NULL,
        warnings    jsonb NOT NULL
      );
      CREATE TABLE IF NOT EXISTS pgshift.schema_statements (
        migration   text NOT NULL REFERENCES pgshift.schema_plans ON DELETE CASCADE,
        seq         int  NOT NULL,
        stage       text NOT NULL CHECK (stage IN ('before-data', 'keys', 'post-data')),
        kind        text NOT NULL,
        object      text NOT NULL,
        sql         text NOT NULL,
        state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'existing')),
        applied_at  timestamptz,
        PRIMARY KEY (migration, seq)
      );
      -- the plain table a key or index is built on (built right after that table's full load)
      ALTER TABLE pgshift.schema_statements ADD COLUMN IF NOT EXISTS on_table text;
      -- a foreign key's referenced table: built early once both tables are indexed
      ALTER TABLE pgshift.schema_statements ADD COLUMN IF NOT EXISTS ref_table text;
      -- plain tables whose keys and indexes the full load has built (right after their copy)
      CREATE TABLE IF NOT EXISTS pgshift.schema_table_builds (
        migration   text NOT NULL REFERENCES pgshift.schema_plans ON DELETE CASCADE,
        on_table    text NOT NULL,
        built_at    timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (migration, on_table)
      )`);
  } finally {
    await dst.query('SELECT pg_advisory_unlock(hashtext($1))', ['pgshift schema plan tables']);
  }
}

/** The stored plan's summary, or null when this migration has none yet. */
export async function readPlanSummary(dst: Client, migration: string): Promise<PlanSummaryRow | null> {
  const exists = await dst.query<{ t: string | null }>(`SELECT to_regclass('pgshift.schema_plans')::text AS t`);
  if (!exists.rows[0].t) return null;
  const plan = await dst.query<{ warnings: string[] }>('SELECT warnings FROM pgshift.schema_plans WHERE migration = $1', [migration]);
  if (!plan.rowCount) return null;
  const counts = await dst.query<{ stage: SchemaStage; kind: string; n: number }>(
    'SELECT stage, kind, count(*)::int AS n FROM pgshift.schema_statements WHERE migration = $1 GROUP BY stage, kind',
    [migration],
  );
  return summarize(counts.rows, plan.rows[0].warnings);
}

/** Counts by stage and kind from (stage, kind, n) groups; n defaults to 1 (one statement). */
export function summarize(groups: { stage: SchemaStage; kind: string; n?: number }[], warnings: string[]): PlanSummaryRow {
  const byStage = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<SchemaStage, number>;
  const byKind: Record<string, number> = {};
  let statements = 0;
  for (const g of groups) {
    const n = g.n ?? 1;
    byStage[g.stage] += n;
    byKind[g.kind] = (byKind[g.kind] ?? 0) + n;
    statements += n;
  }
  return { statements, byStage, byKind, warnings };
}

/**
 * Store the plan in the caller's (fenced) transaction. Returns false when
 * another worker stored one first; the caller then reads that one.
 */
export async function storePlan(dst: Client, migration: string, source: string, statements: Statement[], warnings: string[]): Promise<boolean> {
  const head = await dst.query(`INSERT INTO pgshift.schema_plans (migration, source, warnings) VALUES ($1, $2, $3) ON CONFLICT (migration) DO NOTHING`, [
    migration,
    source,
    JSON.stringify(warnings),
  ]);
  if (!head.rowCount) return false;
  await dst.query(
    `INSERT INTO pgshift.schema_statements (migration, seq, stage, kind, object, sql, on_table, ref_table)
     SELECT $1, ord::int, stage, kind, object, sql, on_table, ref_table
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
            WITH ORDINALITY AS u(stage, kind, object, sql, on_table, ref_table, ord)`,
    [
      migration,
      statements.map((s) => s.stage),
      statements.map((s) => s.kind),
      statements.map((s) => s.object),
      statements.map((s) => s.sql),
      statements.map((s) => s.table ?? null),
      statements.map((s) => s.references ?? null),
    ],
  );
  return true;
}

export async function readStage(dst: Client, migration: string, stage: SchemaStage): Promise<StoredStatement[] | null> {
  if (!(await readPlanSummary(dst, migration))) return null;
  const r = await dst.query<StoredStatement>(
    `SELECT seq, stage, kind, object, sql, state FROM pgshift.schema_statements WHERE migration = $1 AND stage = $2 ORDER BY seq`,
    [migration, stage],
  );
  return r.rows;
}

/**
 * The keys and indexes of one plain table, then the foreign keys between
 * tables whose keys are built (this one, and those the full load recorded in
 * schema_table_builds), in plan order. Called only after planSchema stored the plan.
 * `constraining: false` leaves out what change replay could violate before the
 * consistency point (until the apply has passed it, replay may revisit older row states): secondary unique indexes and constraints,
 * exclusion constraints and foreign keys. Primary and replica keys always come.
 */
export async function readTableStatements(dst: Client, migration: string, table: string, constraining: boolean): Promise<StoredStatement[]> {
  const r = await dst.query<StoredStatement>(
    `WITH built AS (SELECT on_table FROM pgshift.schema_table_builds WHERE migration = $1 UNION SELECT $2)
     SELECT seq, stage, kind, object, sql, state FROM pgshift.schema_statements
      WHERE migration = $1
        AND (kind <> 'foreign-key' AND on_table = $2
             OR kind = 'foreign-key' AND on_table IN (SELECT on_table FROM built) AND ref_table IN (SELECT on_table FROM built)
                AND (on_table = $2 OR ref_table = $2))
        AND ($3 OR NOT (kind IN ('unique', 'exclusion', 'foreign-key', 'replica-identity') OR kind = 'index' AND sql LIKE 'CREATE UNIQUE INDEX %'))
      ORDER BY kind = 'foreign-key', seq`,
    [migration, table, constraining],
  );
  return r.rows;
}

/** Record, in the caller's fenced transaction, that the full load built a table's keys and indexes. */
export async function markTableBuilt(dst: Client, migration: string, table: string): Promise<void> {
  await dst.query('INSERT INTO pgshift.schema_table_builds (migration, on_table) VALUES ($1, $2) ON CONFLICT DO NOTHING', [migration, table]);
}

/** Lock one statement's row for this transaction and return its current state. */
export async function lockStatement(dst: Client, migration: string, seq: number): Promise<StatementState> {
  const r = await dst.query<{ state: StatementState }>('SELECT state FROM pgshift.schema_statements WHERE migration = $1 AND seq = $2 FOR UPDATE', [
    migration,
    seq,
  ]);
  return r.rows[0].state;
}

export async function markStatement(dst: Client, migration: string, seq: number, state: Exclude<StatementState, 'pending'>): Promise<void> {
  await dst.query('UPDATE pgshift.schema_statements SET state = $3, applied_at = now() WHERE migration = $1 AND seq = $2', [migration, seq, state]);
}

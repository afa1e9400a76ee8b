// Apply one stage of the stored plan: each statement in its own fenced
// transaction together with the row recording its outcome, so a crash or a
// retry never applies a statement twice and never loses one.
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { parseQualifiedName, parseTableName, qualified } from '../../lib/ident';
import type { SchemaStage, SchemaStageProgress } from '../../lib/migration-state';
import { session, withSession } from '../../lib/io/session';
import { fenced } from '../control';
import { heartbeat } from '../heartbeat';
import { about, FAILURE, withCode } from '../retry';
import { ensurePlanTables, lockStatement, markStatement, markTableBuilt, readStage, readTableStatements, type StoredStatement } from './store';

/** "Already exists" for the object kinds we create (duplicate table / object / schema / function, second PK). */
const ALREADY_EXISTS = new Set(['42P07', '42710', '42P06', '42723']);

function alreadyExists(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return ALREADY_EXISTS.has(e.code ?? '') || (e.code === '42P16' && /multiple primary keys/.test(e.message ?? ''));
}

const FUNCTION_KINDS = new Set(['function', 'procedure']);

/** Name the statement in the error, keeping its SQLSTATE for the retry classification. */
function named(err: unknown, st: StoredStatement): unknown {
  if (err instanceof Error && !(err instanceof ApplicationFailure)) {
    err.message = `${st.kind} ${st.object}: ${err.message} (statement ${st.seq}: ${st.sql.slice(0, 300)}${st.sql.length > 300 ? '…' : ''})`;
  }
  return err;
}

type Outcome = 'applied' | 'skipped' | 'existing';

/** Index builds touch one table each and are the long part of a stage: they run side by side (so do FK validations). */
const PARALLEL_KINDS = new Set(['primary-key', 'replica-key', 'unique', 'index', 'exclusion']);
const DEADLOCK = '40P01';

/** A foreign key as render.ts writes it (quoted names): `ALTER TABLE <table> ADD CONSTRAINT <name> FOREIGN KEY …`. */
const FOREIGN_KEY_SQL = /^ALTER TABLE ("(?:[^"]|"")+"\."(?:[^"]|"")+") ADD CONSTRAINT ("(?:[^"]|"")+") FOREIGN KEY /;

/**
 * How a statement is applied: in one step, or — a foreign key to be validated — in two, so
 * that the long part, the check of every row, holds lighter locks: `ADD … NOT VALID` takes
 * SHARE ROW EXCLUSIVE on both tables for a moment, `VALIDATE CONSTRAINT` then SHARE UPDATE
 * EXCLUSIVE on the referencing table and only ROW SHARE on the referenced one. Checks of
 * FKs into one table then run beside each other and beside that table's ANALYZE and index
 * builds, where ADD FOREIGN KEY would wait for each of them. Only for plain tables (a
 * partitioned table takes no NOT VALID foreign key).
 */
type ForeignKeyStep = { kind: 'add-not-valid' | 'validate'; table: string; constraint: string };
type Step = { kind: 'one' } | ForeignKeyStep;

/** The first step of `st`: all of it, or a foreign key to be validated added NOT VALID (then `checkOf` it). */
function firstStep(st: StoredStatement): Step {
  const m = st.kind === 'foreign-key' && !/ NOT VALID$/.test(st.sql) ? FOREIGN_KEY_SQL.exec(st.sql) : null;
  return m ? { kind: 'add-not-valid', table: m[1], constraint: m[2] } : { kind: 'one' };
}

const checkOf = (step: ForeignKeyStep): ForeignKeyStep => ({ ...step, kind: 'validate' });

/** Run one step of `st` in its fenced transaction; 'added': the FK exists NOT VALID and still waits for its check. */
async function applyStep(dst: Client, config: Config, runToken: string, st: StoredStatement, step: Step): Promise<Outcome | 'added'> {
  return fenced(dst, config.name, runToken, async () => {
    // The row lock makes a concurrent (zombie) attempt wait, then see the outcome instead of re-running.
    const state = await lockStatement(dst, config.name, st.seq);
    if (state !== 'pending') return state === 'applied' ? 'skipped' : 'existing';
    if (step.kind === 'add-not-valid') {
      // An earlier attempt may have added it and stopped before the check; one that is already
      // valid was there before us: the plain statement reports it as existing.
      const r = await dst.query<{ valid: boolean }>(
        'SELECT convalidated AS valid FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass AND conname = $2',
        [step.table, parseQualifiedName(step.constraint, 1)[0]],
      );
      if (r.rows[0]?.valid) await dst.query(st.sql);
      else if (!r.rows.length) await dst.query(`${st.sql} NOT VALID`);
      return 'added';
    }
    if (step.kind === 'validate') await dst.query(`ALTER TABLE ${step.table} VALIDATE CONSTRAINT ${step.constraint}`);
    else {
      if (FUNCTION_KINDS.has(st.kind)) await dst.query('SET LOCAL check_function_bodies = off');
      await dst.query(st.sql);
    }
    await markStatement(dst, config.name, st.seq, 'applied');
    return 'applied';
  });
}

async function applyOnce(dst: Client, config: Config, runToken: string, st: StoredStatement, step: Step = { kind: 'one' }): Promise<Outcome | 'added'> {
  try {
    return await applyStep(dst, config, runToken, st, step);
  } catch (err) {
    if (!alreadyExists(err)) throw err;
    if (config.existingTargetTables !== 'ignore') {
      throw ApplicationFailure.nonRetryable(
        `${st.kind} ${st.object} already exists on the destination (${withCode(err)}); ` +
          'drop it there and retry, or set existingTargetTables: ignore to keep what is there',
        FAILURE.invalidInput,
      );
    }
    await fenced(dst, config.name, runToken, async () => {
      if ((await lockStatement(dst, config.name, st.seq)) === 'pending') await markStatement(dst, config.name, st.seq, 'existing');
    });
    return 'existing';
  }
}

async function applyOne(dst: Client, config: Config, runToken: string, st: StoredStatement, step?: Step): Promise<Outcome | 'added'> {
  // Parallel builds lock tables in their own order; the server breaks a deadlock by failing one, which simply goes again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await applyOnce(dst, config, runToken, st, step);
    } catch (err) {
      if ((err as { code?: string }).code === DEADLOCK && attempt < 5) continue;
      throw named(err, st);
    }
  }
}

/**
 * Consecutive index builds form one batch, consecutive foreign keys another
 * (never mixed: an FK needs the unique index it references to be complete);
 * every other statement is a batch of its own (a barrier).
 */
function batches(statements: StoredStatement[]): StoredStatement[][] {
  const out: StoredStatement[][] = [];
  const group = (kind: string) => (kind === 'foreign-key' ? 'foreign-key' : PARALLEL_KINDS.has(kind) ? 'index' : null);
  for (const st of statements) {
    const last = out[out.length - 1];
    if (last && group(st.kind) !== null && group(st.kind) === group(last[0].kind)) last.push(st);
    else out.push([st]);
  }
  return out;
}

/** Run `work` over `items` with one worker per session; the first failure stops the others after their current item. */
async function onSessions<T>(sessions: Client[], items: T[], work: (c: Client, item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  await Promise.all(
    sessions.map(async (c) => {
      while (!failure && next < items.length) {
        const item = items[next++];
        try {
          await work(c, item);
        } catch (err) {
          failure ??= { err };
        }
      }
    }),
  );
  if (failure) throw (failure as { err: unknown }).err;
}

/**
 * Build the keys and indexes of one plain table right after its full load,
 * while other tables still copy (as pgcopydb does), then the foreign keys
 * whose two tables have their keys by now. Same per-statement transactions as
 * a stage, so the keys / post-data phases later skip them. The table is then
 * recorded as built on the destination (which tables have their keys is read
 * from there, never passed in).
 */
export async function applyTableStatements(input: { config: Config; runToken: string; table: string }): Promise<{ applied: number; total: number }> {
  const { config, runToken, table } = input;
  // An `indexes` session: a writer the fence ends, with the catalog settings the plan was rendered with.
  return withSession(config, 'destination', 'indexes', async (dst) => {
    await ensurePlanTables(dst);
    // With change capture to follow, unique constraints and FKs wait for the consistency point (older row states may be replayed until then).
    const statements = await readTableStatements(dst, config.name, table, !config.mode.incremental);
    let applied = 0;
    const checks: { st: StoredStatement; step: ForeignKeyStep }[] = [];
    for (const [i, st] of statements.entries()) {
      if (st.state !== 'pending') continue;
      heartbeat(`${table}: ${i + 1}/${statements.length} ${st.kind} ${st.object}`);
      const step = firstStep(st);
      const outcome = await applyOne(dst, config, runToken, st, step);
      if (outcome === 'added' && step.kind !== 'one') checks.push({ st, step: checkOf(step) });
      else if (outcome === 'applied') applied++;
    }
    // Statistics now, while other tables still copy (the analyze phase skips it then); the
    // checks of this table's FKs beside it, on a second session (those out of this table wait
    // for the ANALYZE, those into it do not).
    const t = parseTableName(table);
    const analyze = async () => {
      heartbeat(`${table}: ANALYZE`);
      await fenced(dst, config.name, runToken, async () => {
        await dst.query(`ANALYZE ${qualified(t.schema, t.table)}`).catch((err) => Promise.reject(about(`ANALYZE ${table}`, err)));
        await markTableBuilt(dst, config.name, table);
      });
    };
    const validate = async (c: Client) => {
      for (const { st, step } of checks) if ((await applyOne(c, config, runToken, st, step)) === 'applied') applied++;
    };
    if (checks.length) await Promise.all([analyze(), withSession(config, 'destination', 'indexes', validate)]);
    else await analyze();
    // Two tables built side by side each read their FKs before the other was marked built, so
    // the FK between them was in neither list and would wait for the post-data phase, on the
    // critical path (validating it reads both tables). Read again now that this one is marked:
    // of two such builds, the one marked last sees the other and applies it (the statement's
    // row lock makes a concurrent attempt find it applied).
    const seen = new Set(statements.map((st) => st.seq));
    const late = (await readTableStatements(dst, config.name, table, !config.mode.incremental)).filter(
      (st) => st.kind === 'foreign-key' && st.state === 'pending' && !seen.has(st.seq),
    );
    for (const st of late) {
      heartbeat(`${table}: ${st.kind} ${st.object}`);
      const step = firstStep(st);
      let outcome = await applyOne(dst, config, runToken, st, step);
      if (outcome === 'added' && step.kind !== 'one') outcome = await applyOne(dst, config, runToken, st, checkOf(step));
      if (outcome === 'applied') applied++;
    }
    return { applied, total: statements.length + late.length };
  });
}

export async function applyStage(input: { config: Config; runToken: string; stage: SchemaStage }): Promise<SchemaStageProgress> {
  const { config, runToken, stage } = input;
  // `schema` sessions: writers the fence ends, with the catalog settings the plan was rendered with.
  return withSession(config, 'destination', 'schema', async (dst) => {
    const statements = await readStage(dst, config.name, stage);
    if (!statements) {
      throw ApplicationFailure.nonRetryable(`no schema plan for migration ${config.name} on the destination: planSchema must run first`, FAILURE.invalidInput);
    }
    const progress: SchemaStageProgress = { total: statements.length, applied: 0, skipped: 0, existing: 0 };
    const position = new Map(statements.map((st, i) => [st.seq, i + 1]));
    const pending = statements.filter((st) => {
      if (st.state !== 'pending') progress[st.state === 'applied' ? 'skipped' : 'existing']++;
      return st.state === 'pending';
    });
    const extra: Client[] = [];
    try {
      for (const batch of batches(pending)) {
        const width = Math.min(config.parallelism.indexes, batch.length);
        while (extra.length < width - 1) extra.push(await session(config, 'destination', 'schema'));
        await onSessions([dst, ...extra.slice(0, width - 1)], batch, async (c, st) => {
          // The keep-alive resends these details while a long build runs.
          heartbeat(`${stage} ${position.get(st.seq)}/${statements.length} ${st.kind} ${st.object}`);
          // One step each (no step given): never 'added'.
          const outcome = (await applyOne(c, config, runToken, st)) as Outcome;
          progress[outcome]++;
        });
      }
    } finally {
      await Promise.all(extra.map((c) => c.end().catch(() => undefined)));
    }
    return progress;
  });
}

// Pre-processing on the source for change capture:
//  - control schema `pgshift` with a heartbeat table (one row per migration,
//    source clock), in the publication, so lag is measured from the source
//    clock on both ends;
//  - REPLICA IDENTITY USING INDEX on tables keyed only by a UNIQUE index,
//    FULL on acknowledged tables without key (set before they are published:
//    a published table without identity would refuse UPDATE and DELETE);
//  - publication pgshift_<name> listing the selected tables explicitly (no
//    FOR TABLES IN SCHEMA before PostgreSQL 15), created before the slot: the
//    slot decodes with the catalog as of each change, so a publication that
//    did not exist yet at a change's position cannot publish it;
//  - the logical slot (pgoutput). Its consistent point is where applying
//    starts; the slot exists before any copy snapshot is taken, so every
//    change committed after that point is either in a snapshot or in the
//    stream (or both), never lost.
//  - DDL capture (activities/capture/ddl-capture.ts): event triggers writing
//    pgshift.ddl_log, which is in the publication, when the role is superuser;
// Idempotent: a retry reuses the slot (never a second one) and returns the
// same consistent point, recorded on the destination.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { captureSlotName, DDL_LOG_TABLE, HEARTBEAT_TABLE, publicationName, SOURCE_CONTROL_SCHEMA } from '../../lib/capture/names';
import { displayName, ident, qualified } from '../../lib/ident';
import { session, withSession } from '../../lib/io/session';
import { keylessTablesApplied } from '../../lib/selection';
import { fenced } from '../control';
import { readCopyTables } from '../full-load/tables';
import { ensureCaptureTable, readCapture, recordSlot } from './control';
import { liftSourceFence } from '../cutover/fence-source';
import { installDdlCapture, removeDdlCapture } from './ddl-capture';

export interface PrepareSourceInput {
  config: Config;
  runToken: string;
}

export interface PrepareSourceResult {
  slotName: string;
  publication: string;
  /** The slot's consistent point: applying starts here. */
  startLsn: string;
  /** False when a retry found the slot an earlier attempt created. */
  createdSlot: boolean;
  /** Source WAL position once the slot existed: every snapshot taken later (each copy chunk's) is after the slot. */
  readyLsn: string;
  /** Published tables (display names), heartbeat table excluded. */
  tables: string[];
  /** Tables whose replica identity was set to their unique key index. */
  replicaIdentitySet: string[];
  /** Tables without key whose replica identity was set to FULL (acknowledged primary-keys warning). */
  replicaIdentityFull: string[];
  /** DDL on the selected schemas is captured (event trigger) and replayed; false without a superuser on the source. */
  ddlCapture: boolean;
}

const HEARTBEAT = qualified(SOURCE_CONTROL_SCHEMA, HEARTBEAT_TABLE);

function explain(e: unknown, what: string, fix: string): never {
  const err = e as { code?: string; message?: string };
  if (err?.code === '42501') {
    const x = new Error(`source: ${what}: ${err.message} — ${fix}`);
    (x as { code?: string }).code = err.code;
    throw x;
  }
  throw e;
}

async function ensureSourceControl(src: Client, config: Config): Promise<void> {
  // Several migrations may share a source: serialise first-time creation.
  await src.query('SELECT pg_advisory_lock(hashtext($1))', ['pgshift source control schema']);
  try {
    await src
      .query(
        `CREATE SCHEMA IF NOT EXISTS ${ident(SOURCE_CONTROL_SCHEMA)};
         CREATE TABLE IF NOT EXISTS ${HEARTBEAT} (migration text PRIMARY KEY, beat_at timestamptz NOT NULL DEFAULT clock_timestamp());
         COMMENT ON SCHEMA ${ident(SOURCE_CONTROL_SCHEMA)} IS 'pgshift change capture control data; removed by pgshift release'`,
      )
      .catch((e) =>
        explain(
          e,
          'cannot create the control schema pgshift',
          `GRANT CREATE ON DATABASE ${displayName(config.source.database)} TO ${displayName(config.source.user)};`,
        ),
      );
    await src.query(`INSERT INTO ${HEARTBEAT} (migration) VALUES ($1) ON CONFLICT (migration) DO NOTHING`, [config.name]);
  } finally {
    await src.query('SELECT pg_advisory_unlock(hashtext($1))', ['pgshift source control schema']);
  }
}

interface IdentityRow {
  oid: number;
  display: string;
  qualified: string;
  ident: string;
  has_pk: boolean;
  index_columns: string[] | null;
  candidate: string | null;
  candidate_columns: string[] | null;
}

/**
 * Tables keyed by a UNIQUE index without PK get REPLICA IDENTITY USING that
 * index; acknowledged tables without key get REPLICA IDENTITY FULL (their
 * changes are applied by the whole old row, lib/selection.ts
 * keylessTablesApplied); unusable identities fail clearly. Returns the
 * tables changed, by kind.
 */
async function ensureReplicaIdentity(
  src: Client,
  config: Config,
  tables: Awaited<ReturnType<typeof readCopyTables>>,
): Promise<{ index: string[]; full: string[] }> {
  const full: string[] = [];
  if (!tables.length) return { index: [], full };
  const byName = new Map(tables.map((t) => [JSON.stringify([t.schema, t.table]), t]));
  const r = await src.query<IdentityRow & { schema: string; table: string }>(
    `SELECT c.oid, n.nspname AS schema, c.relname AS table, c.relreplident AS ident,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisreplident) AS index_columns,
            ci.relname AS candidate,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(i2.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS candidate_columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN LATERAL (
         SELECT i.indexrelid, i.indkey FROM pg_index i
          WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
            AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k WHERE NOT a.attnotnull)
          ORDER BY i.indisprimary DESC, i.indnatts, i.indexrelid LIMIT 1) i2 ON true
       LEFT JOIN pg_class ci ON ci.oid = i2.indexrelid
      WHERE c.oid = ANY($1::regclass[])
      ORDER BY n.nspname, c.relname`,
    [tables.map((t) => qualified(t.schema, t.table))],
  );
  const changed: string[] = [];
  for (const row of r.rows) {
    const t = byName.get(JSON.stringify([row.schema, row.table]))!;
    const key = t.chunkKey?.columns;
    if (!key) {
      if (!keylessTablesApplied(config)) {
        throw new Error(
          `${t.display} has no PRIMARY KEY or non-null UNIQUE key: its changes cannot be applied by key (add a key, exclude it, or acknowledge the precheck warning primary-keys)`,
        );
      }
      if (row.ident === 'f') continue;
      await src
        .query(`ALTER TABLE ${qualified(t.schema, t.table)} REPLICA IDENTITY FULL`)
        .catch((e) =>
          explain(
            e,
            `cannot set the replica identity of ${t.display}`,
            `the source role must own the table, or run as the owner: ALTER TABLE ${t.display} REPLICA IDENTITY FULL;`,
          ),
        );
      full.push(t.display);
      continue;
    }
    const same = (cols: string[] | null) => !!cols && cols.length === key.length && cols.every((c, i) => c === key[i]);
    if (row.ident === 'f') continue; // full: every old row carries the key
    if (row.ident === 'n') {
      throw new Error(
        `${t.display} has REPLICA IDENTITY NOTHING: its UPDATEs and DELETEs cannot be captured (ALTER TABLE ${t.display} REPLICA IDENTITY DEFAULT)`,
      );
    }
    if (row.ident === 'i') {
      if (same(row.index_columns)) continue;
      throw new Error(
        `${t.display} has REPLICA IDENTITY USING INDEX on (${row.index_columns?.join(', ')}), but its changes are applied by its key (${key.join(', ')}): ` +
          `ALTER TABLE ${t.display} REPLICA IDENTITY DEFAULT (or USING INDEX on the key)`,
      );
    }
    if (row.has_pk) continue; // default identity is the primary key, which is the key
    if (!row.candidate || !same(row.candidate_columns))
      throw new Error(`${t.display}: no unique index on its key (${key.join(', ')}) to use as replica identity`);
    await src
      .query(`ALTER TABLE ${qualified(t.schema, t.table)} REPLICA IDENTITY USING INDEX ${ident(row.candidate)}`)
      .catch((e) =>
        explain(
          e,
          `cannot set the replica identity of ${t.display}`,
          `the source role must own the table, or run as the owner: ALTER TABLE ${t.display} REPLICA IDENTITY USING INDEX ${displayName(row.candidate!)};`,
        ),
      );
    changed.push(t.display);
  }
  return { index: changed, full };
}

async function ensurePublication(
  src: Client,
  config: Config,
  tables: { schema: string; table: string }[],
  slotExists: boolean,
  ddlCapture: boolean,
): Promise<void> {
  const pub = publicationName(config);
  const all = [...tables, { schema: SOURCE_CONTROL_SCHEMA, table: HEARTBEAT_TABLE }];
  const ddlLog = { schema: SOURCE_CONTROL_SCHEMA, table: DDL_LOG_TABLE };
  if (ddlCapture) all.push(ddlLog);
  const list = all.map((t) => qualified(t.schema, t.table)).join(', ');
  const fix = `the source role must own the selected tables (or be superuser) to publish them: ALTER TABLE … OWNER TO ${displayName(config.source.user)};`;
  const exists = await src.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [pub]);
  if (!exists.rowCount) {
    await src.query(`CREATE PUBLICATION ${ident(pub)} FOR TABLE ${list}`).catch((e) => explain(e, `cannot create publication ${pub}`, fix));
    return;
  }
  if (!slotExists) {
    // No slot yet: nothing was captured with the old list, so it may simply be replaced.
    await src.query(`ALTER PUBLICATION ${ident(pub)} SET TABLE ${list}`).catch((e) => explain(e, `cannot update publication ${pub}`, fix));
    return;
  }
  const have = await src.query<{ schemaname: string; tablename: string }>('SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1', [pub]);
  const got = new Set(have.rows.map((r) => JSON.stringify([r.schemaname, r.tablename])));
  const missing = all.filter((t) => !got.has(JSON.stringify([t.schema, t.table])));
  if (missing.length === 1 && missing[0] === ddlLog) {
    // A slot made before DDL capture was set up: DDL is captured from now on.
    await src
      .query(`ALTER PUBLICATION ${ident(pub)} ADD TABLE ${qualified(ddlLog.schema, ddlLog.table)}`)
      .catch((e) => explain(e, `cannot update publication ${pub}`, fix));
    return;
  }
  if (missing.length) {
    throw new Error(
      `publication ${pub} lacks ${missing.map((t) => displayName(t.schema, t.table)).join(', ')} while its slot exists already: their changes since the slot was created are not captured; ` +
        `release the migration's source objects (pgshift release) and start again`,
    );
  }
}

export async function prepareSource(input: PrepareSourceInput): Promise<PrepareSourceResult> {
  const { config, runToken } = input;
  const slot = captureSlotName(config);
  const pub = publicationName(config);
  const src = await session(config, 'source', 'prepare');
  try {
    // Two attempts of the same migration (a retry racing a slow first try) take turns.
    await src.query('SELECT pg_advisory_lock(hashtext($1))', [`pgshift prepare ${slot}`]);
    const tables = await readCopyTables(src, config);
    await ensureSourceControl(src, config);
    const identities = await ensureReplicaIdentity(src, config, tables);
    // After pgshift's own ALTERs (replica identity), before the slot: every later DDL is in the stream.
    const ddlCapture = config.mode.incremental && (await installDdlCapture(src, config, tables));

    const found = await src.query<{ plugin: string | null; database: string | null; slot_type: string; confirmed: string | null }>(
      `SELECT plugin, database, slot_type, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    const existing = found.rows[0];
    if (existing) {
      const db = (await src.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
      if (existing.slot_type !== 'logical' || existing.plugin !== 'pgoutput' || existing.database !== db) {
        throw new Error(
          `replication slot ${slot} exists but is not a pgoutput logical slot of database ${db} (${existing.slot_type}, ${existing.plugin ?? 'no plugin'}, ${existing.database ?? 'no database'}): ` +
            `choose another incremental.slotName or drop it (SELECT pg_drop_replication_slot('${slot}'))`,
        );
      }
    }
    await ensurePublication(src, config, tables, !!existing, ddlCapture);

    let startLsn: string;
    let createdSlot = false;
    if (!existing) {
      const r = await src.query<{ lsn: string }>(`SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
      startLsn = r.rows[0].lsn;
      createdSlot = true;
    } else {
      startLsn = existing.confirmed!;
    }
    const readyLsn = (await src.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l;

    await withSession(config, 'destination', 'prepare', async (dst) => {
      await ensureCaptureTable(dst);
      const row = await readCapture(dst, config.name);
      // A retry after the slot was recorded keeps the recorded consistent point (the slot may have advanced since).
      if (!createdSlot && row && row.slotName === slot) startLsn = row.startLsn;
      await fenced(dst, config.name, runToken, () => recordSlot(dst, config.name, slot, pub, startLsn));
    });
    return {
      slotName: slot,
      publication: pub,
      startLsn,
      createdSlot,
      readyLsn,
      tables: tables.map((t) => t.display),
      replicaIdentitySet: identities.index,
      replicaIdentityFull: identities.full,
      ddlCapture,
    };
  } finally {
    await src.end().catch(() => undefined);
  }
}

/** Refresh this migration's heartbeat row (source clock). */
export async function beatSource(src: Client, migration: string): Promise<void> {
  await src.query(
    `INSERT INTO ${HEARTBEAT} (migration, beat_at) VALUES ($1, clock_timestamp())
     ON CONFLICT (migration) DO UPDATE SET beat_at = EXCLUDED.beat_at`,
    [migration],
  );
}

export interface ReleaseSourceResult {
  droppedSlot: boolean;
  droppedPublication: boolean;
  droppedSchema: boolean;
  /** The cutover's read-only fence on the source: lifted (previous setting restored), kept (after a cutover), or none was set. */
  fence: 'lifted' | 'kept' | 'none';
}

/**
 * Remove the migration's capture objects from the source: slot (ending its
 * walsender first), publication, heartbeat row, and the control schema once
 * no other migration uses it. A read-only fence this migration set is lifted
 * — unless `keepFence` (a completed cutover: the application has moved, the
 * source stays read-only). Safe to run any number of times.
 */
export async function releaseSource(input: { config: Config; keepFence?: boolean }): Promise<ReleaseSourceResult> {
  const { config } = input;
  const slot = captureSlotName(config);
  // The cleanup of what a finished or abandoned migration left on the source.
  return withSession(config, 'source', 'abort', async (src) => {
    let droppedSlot = false;
    for (let attempt = 0; ; attempt++) {
      const s = await src.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      if (!s.rowCount) break;
      if (s.rows[0].pid) await src.query('SELECT pg_terminate_backend($1)', [s.rows[0].pid]).catch(() => undefined);
      try {
        await src.query('SELECT pg_drop_replication_slot($1)', [slot]);
        droppedSlot = true;
        break;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === '42704') break; // dropped meanwhile
        if (code !== '55006' || attempt >= 50) throw e; // still active: its walsender is exiting
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const fence = await liftSourceFence(src, config.name, { keep: input.keepFence });
    await removeDdlCapture(src, config);
    const pub = await src.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publicationName(config)]);
    if (pub.rowCount) await src.query(`DROP PUBLICATION IF EXISTS ${ident(publicationName(config))}`);
    let droppedSchema = false;
    const hb = await src.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [HEARTBEAT]);
    if (hb.rows[0].t) {
      await src.query('SELECT pg_advisory_lock(hashtext($1))', ['pgshift source control schema']);
      try {
        await src.query(`DELETE FROM ${HEARTBEAT} WHERE migration = $1`, [config.name]);
        const others = await src.query(`SELECT 1 FROM ${HEARTBEAT} LIMIT 1`);
        if (!others.rowCount) {
          await src.query(`DROP SCHEMA IF EXISTS ${ident(SOURCE_CONTROL_SCHEMA)} CASCADE`);
          droppedSchema = true;
        }
      } finally {
        await src.query('SELECT pg_advisory_unlock(hashtext($1))', ['pgshift source control schema']);
      }
    }
    return { droppedSlot, droppedPublication: !!pub.rowCount, droppedSchema, fence };
  });
}

// DDL replay in the apply: a row of the source's DDL log (ddl-capture.ts)
// arrives in the stream at the DDL's position. The apply has flushed what came
// before it; the entry's statements (ddl-plan.ts) run in the same destination
// transaction as the data around it and the applied-position update, so a DDL
// is applied exactly once whatever crashes. The apply's view of the table
// (columns, destination types, key) is rebuilt from the shape after the DDL,
// and the pgoutput Relation message that follows maps the new columns.
//
// An entry that cannot be replayed — blocked by its plan, or refused by the
// destination — stops the round before its source transaction (the
// destination transaction rolls back): the round returns it as `ddl.blocked`,
// the workflow shows and alerts it, and waits for `pgshift ddl skip ID ENTRY`.
// Entries that are only reported (not replayed, the data does not diverge)
// let the apply go on; both are listed in the round's result.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { DDL_LOG_TABLE } from '../../lib/capture/names';
import { formatLsn, type Lsn } from '../../lib/capture/lsn';
import type { Datum } from '../../lib/capture/pgoutput';
import type { ApplyTable } from '../../lib/capture/sql';
import { displayName, qualified } from '../../lib/ident';
import { nameMapper } from '../../lib/name-mapping';
import { keylessTablesApplied, selectsByName } from '../../lib/selection';
import type { DdlEvent } from '../../lib/capture-progress';
import { readKeylessTable } from './apply-keyless';
import { type DdlEntry, type PlanContext, planDdl, type TableChange, type TableShape } from './ddl-plan';
import { tableKey } from '../full-load/tables';

export { DDL_LOG_TABLE };

export class DdlBlocked extends Error {
  constructor(readonly event: DdlEvent) {
    super(`DDL entry ${event.entry} at ${event.lsn} (${event.tag}) is not replayed: ${event.reason}`);
    this.name = 'DdlBlocked';
  }
}

/** Column positions of the DDL log's Relation message. */
export type DdlColumns = Record<
  'id' | 'migration' | 'event' | 'tag' | 'statement' | 'objects' | 'relations' | 'role' | 'replica' | 'search_path' | 'problems',
  number
>;

export function ddlColumns(names: string[]): DdlColumns {
  const at = (n: string) => names.indexOf(n);
  return {
    id: at('id'),
    migration: at('migration'),
    event: at('event'),
    tag: at('tag'),
    statement: at('statement'),
    objects: at('objects'),
    relations: at('relations'),
    role: at('role'),
    replica: at('replica'),
    search_path: at('search_path'),
    problems: at('problems'),
  };
}

const text = (v: Datum | undefined): string | null => (typeof v === 'string' ? v : null);
const json = <T>(v: Datum | undefined, fallback: T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : fallback);

export function ddlEntry(cols: DdlColumns, values: Datum[]): DdlEntry {
  return {
    id: Number(text(values[cols.id])),
    event: text(values[cols.event]) ?? '',
    tag: text(values[cols.tag]) ?? '',
    statement: text(values[cols.statement]),
    objects: json(values[cols.objects], []),
    relations: json(values[cols.relations], []),
    role: text(values[cols.role]) ?? '',
    replica: text(values[cols.replica]) === 't',
    searchPath: text(values[cols.search_path]),
    problems: json(values[cols.problems], []),
  };
}

/** How many DDL events a round's result keeps (the newest). */
const EVENTS_KEPT = 20;

export class DdlReplay {
  replayed = 0;
  readonly events: DdlEvent[] = [];
  private keywords: Set<string> | null = null;
  private searchPath: string | null = null;
  private readonly map;
  private readonly selectsName;

  constructor(
    private readonly config: Config,
    private readonly dst: Client,
    /** The apply's tables by source [schema, table]: updated in place. */
    private readonly tables: Map<string, ApplyTable>,
    private readonly skips: Set<number>,
    /** Records the apply's tables on the destination, in the transaction of the DDL. */
    private readonly saveTables: () => Promise<void>,
  ) {
    this.map = nameMapper(config.objects);
    this.selectsName = selectsByName(config.objects);
  }

  private note(e: DdlEntry, lsn: Lsn, what: DdlEvent['what'], reason: string | null, statements?: string[]): DdlEvent {
    const ev: DdlEvent = { entry: e.id, lsn: formatLsn(lsn), tag: e.tag, statement: (e.statement ?? '').slice(0, 2000), what, reason, statements };
    this.events.push(ev);
    if (this.events.length > EVENTS_KEPT) this.events.shift();
    return ev;
  }

  private context(): PlanContext {
    const schemas = new Set(this.config.objects.schemas);
    return {
      map: this.map,
      selects: (schema, table) => schemas.has(schema) && this.selectsName({ kind: 'r', schema, name: table, root: { schema, name: table } }),
      selectedSchemas: schemas,
      relation: (schema, name) => {
        const t = this.tables.get(tableKey(schema, name));
        return t && { schema, name, target: t.target, columns: new Map(t.columns.map((c) => [c.source, c.target])) };
      },
      keywords: this.keywords!,
    };
  }

  /** Replay one entry inside the caller's destination transaction (its earlier changes flushed). Throws DdlBlocked. */
  async replay(e: DdlEntry, commitLsn: Lsn): Promise<void> {
    if (this.skips.has(e.id)) {
      this.note(e, commitLsn, 'skipped', 'skipped by the operator (pgshift ddl skip)');
      return;
    }
    if (!this.keywords) {
      const r = await this.dst.query<{ word: string }>('SELECT word FROM pg_catalog.pg_get_keywords()');
      this.keywords = new Set(r.rows.map((x) => x.word));
      this.searchPath = (await this.dst.query<{ p: string }>(`SELECT current_setting('search_path') AS p`)).rows[0].p;
    }
    const plan = planDdl(this.context(), e);
    if (plan.kind === 'ignore') return;
    if (plan.kind === 'report') {
      this.note(e, commitLsn, 'reported', plan.why);
      return;
    }
    if (plan.kind === 'block') throw new DdlBlocked(this.note(e, commitLsn, 'blocked', plan.why));
    const dst = this.dst;
    let current = '';
    try {
      // Deferred checks of the rows before it are due now: ALTER TABLE refuses to run with trigger events pending.
      await dst.query('SET CONSTRAINTS ALL IMMEDIATE');
      if (plan.text && e.searchPath !== null) await dst.query(`SELECT set_config('search_path', $1, true)`, [e.searchPath]);
      for (const s of plan.statements) {
        current = s;
        await dst.query(s);
      }
      current = '';
      if (plan.text) await dst.query(`SELECT set_config('search_path', $1, true)`, [this.searchPath]);
      for (const c of plan.tables) await this.applyTableChange(c);
      if (plan.tables.length) await this.saveTables();
      await dst.query('SET CONSTRAINTS ALL DEFERRED');
    } catch (err) {
      if (err instanceof DdlBlocked) throw err;
      const msg = (err as Error).message;
      throw new DdlBlocked(this.note(e, commitLsn, 'blocked', current ? `the destination refused ${current}: ${msg}` : msg, plan.statements));
    }
    this.replayed++;
    this.note(e, commitLsn, 'replayed', plan.notes.length ? plan.notes.join('; ') : null, plan.statements);
  }

  /** The destination transaction rolled back: what it replayed is undone (the event that stopped it stays). */
  rollBack(to: { replayed: number; events: number }, keep: DdlEvent | null): void {
    this.replayed = to.replayed;
    this.events.splice(to.events);
    if (keep) this.events.push(keep);
  }

  private async applyTableChange(c: TableChange): Promise<void> {
    if (c.op === 'drop') {
      this.tables.delete(tableKey(c.schema, c.name));
      return;
    }
    const previous = c.before ? this.tables.get(tableKey(c.before.schema, c.before.name)) : undefined;
    if (c.before) this.tables.delete(tableKey(c.before.schema, c.before.name));
    this.tables.set(tableKey(c.shape.schema, c.shape.name), await this.applyTable(c.shape, previous));
  }

  /** The apply's view of a table after a DDL: source columns from its shape, destination types from the destination. */
  private async applyTable(s: TableShape, previous: ApplyTable | undefined): Promise<ApplyTable> {
    const display = displayName(s.schema, s.name);
    const target = this.map.table(s.schema, s.name);
    const reg = await this.dst.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [qualified(target.schema, target.table)]);
    const oid = reg.rows[0].oid;
    if (!oid) throw new Error(`destination table ${displayName(target.schema, target.table)} does not exist after the DDL`);
    const cols = await this.dst.query<{ name: string; type: string; always: boolean }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attidentity = 'a' AS always
         FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`,
      [oid],
    );
    const byName = new Map(cols.rows.map((c) => [c.name, c]));
    const sourceCols = s.columns.filter((c) => !c.generated);
    const columns = sourceCols.map((c) => {
      const t = this.map.column(s.schema, s.name, c.name);
      const d = byName.get(t);
      if (!d) throw new Error(`destination table ${displayName(target.schema, target.table)} has no column ${JSON.stringify(t)} after the DDL`);
      return { source: c.name, target: t, type: d.type, identityAlways: d.always };
    });
    const notNull = new Set(s.columns.filter((c) => c.notnull).map((c) => c.name));
    const key =
      s.constraints.find((k) => k.type === 'p')?.columns ??
      s.constraints.find((k) => k.type === 'u' && !k.deferrable && k.columns?.every((n) => notNull.has(n)))?.columns ??
      null;
    const base = { display, source: { schema: s.schema, table: s.name }, target, columns, filter: previous?.filter ?? null };
    if (!key) {
      if (!keylessTablesApplied(this.config)) {
        throw new Error(
          `${display} has no PRIMARY KEY or non-null UNIQUE key after the DDL: its changes cannot be applied by key (acknowledge the precheck warning primary-keys to apply such tables by whole row)`,
        );
      }
      const created = !previous || !!previous.keyless?.created;
      const config = created ? { name: this.config.name, mode: { ...this.config.mode, full: false } } : this.config;
      const keyless = await readKeylessTable(this.dst, config, tableKey(s.schema, s.name), display, columns, oid);
      return { ...base, key: [], sourceKeyTypes: [], keyless: { ...keyless, ...(created ? { created } : {}) } };
    }
    const idx = key.map((k) => sourceCols.findIndex((c) => c.name === k));
    return { ...base, key: idx, sourceKeyTypes: idx.map((i) => sourceCols[i].type) };
  }
}

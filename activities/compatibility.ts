// Compatibility report of the source against the destination:
// every object of the selected schemas counted by kind, and each one pgshift
// cannot migrate as it is listed with the reason and the fix. Read-only.
import type { Client } from 'pg';
import type { Config } from '../lib/config';
import { displayName } from '../lib/ident';
import { ConnectionSetupError } from '../lib/io/pg';
import { withSessions } from '../lib/io/session';
import type { CompatibilityReport, IncompatibleObject, KindCount, ObjectKind } from '../lib/report';
import { keylessTablesApplied } from '../lib/selection';
import { readSelection, type Selection } from './selection';

interface Inventory {
  counts: Map<ObjectKind, number>;
  problems: IncompatibleObject[];
}

function add(inv: Inventory, kind: ObjectKind, n = 1) {
  inv.counts.set(kind, (inv.counts.get(kind) ?? 0) + n);
}

async function rows<T>(c: Client, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await c.query(sql, params)).rows as T[];
}

/** Kinds of relations, with what makes a table incompatible for the chosen mode. */
function relations(inv: Inventory, s: Selection, config: Config) {
  const kindOf = { r: 'table', p: 'partitioned table', v: 'view', m: 'materialized view', f: 'foreign table' } as const;
  for (const r of s.relations) {
    add(inv, kindOf[r.kind]);
    if (r.kind === 'f') {
      inv.problems.push({
        kind: 'foreign table',
        object: r.display,
        problem: 'foreign tables are not migrated (their data lives on another server)',
        fix: 'create the foreign server and table on the destination by hand, or exclude it',
      });
    }
    if (r.kind !== 'r' || !config.mode.incremental) continue;
    if (!r.key && !keylessTablesApplied(config)) {
      inv.problems.push({
        kind: 'table',
        object: r.display,
        problem: 'no PRIMARY KEY or non-null UNIQUE key: its changes cannot be applied by key',
        fix: `add a primary key, exclude it (objects.exclude: [${r.display}]), or acknowledge the precheck warning primary-keys (acknowledgeWarnings: [primary-keys]): pgshift then applies its changes by whole-row image`,
      });
    }
    if (r.unlogged) {
      inv.problems.push({
        kind: 'table',
        object: r.display,
        problem: 'unlogged: its changes are not written to the WAL and cannot be captured',
        fix: `ALTER TABLE ${r.display} SET LOGGED, or exclude it`,
      });
    }
  }
}

export async function compatibilityReport(input: { config: Config }): Promise<CompatibilityReport> {
  const { config } = input;
  try {
    return await withSessions(config, 'evaluate', (src, dst) => inventory(src, dst, config));
  } catch (e) {
    // The precheck's connectivity items explain; an empty report is the honest answer.
    if (e instanceof ConnectionSetupError) return { overview: [], details: [] };
    throw e;
  }
}

/** Read-only on both sides (the evaluate sessions' check profile). */
async function inventory(src: Client, dst: Client, config: Config): Promise<CompatibilityReport> {
  const schemas = config.objects.schemas;
  const inv: Inventory = { counts: new Map(), problems: [] };
  const selection = await readSelection(src, config);
  add(inv, 'schema', schemas.length - selection.missingSchemas.length);
  relations(inv, selection, config);

  // Extensions, and the columns whose types they provide.
  const avail = new Set((await rows<{ name: string }>(dst, 'SELECT name FROM pg_available_extensions')).map((r) => r.name));
  const exts = await rows<{ name: string; version: string }>(
    src,
    `SELECT extname AS name, extversion AS version FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1`,
  );
  const missingExt = new Set<string>();
  for (const e of exts) {
    add(inv, 'extension');
    if (!avail.has(e.name)) {
      missingExt.add(e.name);
      inv.problems.push({
        kind: 'extension',
        object: e.name,
        problem: `extension ${e.name} ${e.version} is not available on the destination`,
        fix: `install ${e.name} on the destination server, or drop it from the source if unused`,
      });
    }
  }
  const oids = selection.relations.map((r) => r.oid);
  const extColumns = await rows<{ rel: string; col: string; type: string; ext: string }>(
    src,
    `SELECT a.attrelid::regclass::text AS rel, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type, e.extname AS ext
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid OR t.typarray = a.atttypid
       JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
       JOIN pg_extension e ON e.oid = d.refobjid
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped`,
    [oids],
  );
  for (const c of extColumns.filter((x) => missingExt.has(x.ext))) {
    inv.problems.push({
      kind: 'column',
      object: `${c.rel}.${displayName(c.col)}`,
      problem: `type ${c.type} comes from extension ${c.ext}, missing on the destination`,
      fix: `install ${c.ext} on the destination`,
    });
  }

  // Functions and procedures: their language must exist on the destination.
  const dstLangs = new Set((await rows<{ l: string }>(dst, 'SELECT lanname AS l FROM pg_language')).map((r) => r.l));
  const procs = await rows<{ kind: string; name: string; lang: string }>(
    src,
    `SELECT p.prokind AS kind, format('%s(%s)', p.oid::regproc::text, pg_get_function_identity_arguments(p.oid)) AS name, l.lanname AS lang
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
      WHERE n.nspname = ANY($1) AND p.prokind IN ('f', 'p', 'a', 'w')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`,
    [schemas],
  );
  for (const p of procs) {
    const kind: ObjectKind = p.kind === 'p' ? 'procedure' : 'function';
    add(inv, kind);
    if (p.kind === 'a' || p.kind === 'w') {
      inv.problems.push({
        kind,
        object: p.name,
        problem: 'aggregate and window functions are not migrated',
        fix: 'create it on the destination by hand (CREATE AGGREGATE)',
      });
    } else if (!dstLangs.has(p.lang) && !avail.has(p.lang)) {
      inv.problems.push({
        kind,
        object: p.name,
        problem: `language ${p.lang} is not available on the destination`,
        fix: `install the ${p.lang} language on the destination, or rewrite the function`,
      });
    }
  }

  // Types, sequences, indexes, constraints, triggers, rules: counted; rules are not migrated.
  const counts = await rows<{ kind: ObjectKind; n: number }>(
    src,
    `SELECT 'type' AS kind, count(*)::int AS n FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       WHERE n.nspname = ANY($1) AND (t.typtype IN ('e', 'r') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
     UNION ALL SELECT 'domain', count(*)::int FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ANY($1) AND t.typtype = 'd'
     UNION ALL SELECT 'sequence', count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1) AND c.relkind = 'S'
     UNION ALL SELECT 'index', count(*)::int FROM pg_index i WHERE i.indrelid = ANY($2)
     UNION ALL SELECT 'constraint', count(*)::int FROM pg_constraint c WHERE c.conrelid = ANY($2) AND c.contype <> 'n'
     UNION ALL SELECT 'trigger', count(*)::int FROM pg_trigger t WHERE t.tgrelid = ANY($2) AND NOT t.tgisinternal`,
    [schemas, oids],
  );
  for (const c of counts) add(inv, c.kind, c.n);
  const rules = await rows<{ name: string; rel: string }>(
    src,
    `SELECT rulename AS name, ev_class::regclass::text AS rel FROM pg_rewrite WHERE rulename <> '_RETURN' AND ev_class = ANY($1)`,
    [oids],
  );
  for (const r of rules) {
    add(inv, 'rule');
    inv.problems.push({
      kind: 'rule',
      object: `${displayName(r.name)} on ${r.rel}`,
      problem: 'rules are not migrated',
      fix: 'rewrite it as a trigger or view, or re-create it on the destination after cutover',
    });
  }
  const [lo] = await rows<{ n: number }>(src, 'SELECT count(*)::int AS n FROM pg_largeobject_metadata');
  if (lo.n) {
    add(inv, 'large object', lo.n);
    inv.problems.push({
      kind: 'large object',
      object: `${lo.n} large object(s)`,
      problem: 'large objects are not migrated',
      fix: 'move them with lo_export / lo_import (or pg_dump --large-objects), or store them in bytea columns',
    });
  }

  const incompatible = new Map<ObjectKind, number>();
  for (const p of inv.problems) incompatible.set(p.kind, (incompatible.get(p.kind) ?? 0) + 1);
  const overview: KindCount[] = [...inv.counts.entries()]
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => ({ kind, incompatible: Math.min(n, incompatible.get(kind) ?? 0), compatible: Math.max(0, n - (incompatible.get(kind) ?? 0)) }));
  for (const [kind, n] of incompatible) if (!inv.counts.has(kind)) overview.push({ kind, compatible: 0, incompatible: n });
  return { overview, details: inv.problems };
}

// Object-level precheck items: what is selected, keys, replica identity,
// triggers and rules, unlogged and foreign tables, large objects, materialized
// views, extensions, tables already on the destination, name mapping.
import { displayName, parseQualifiedName, parseTableName, qualified } from '../../lib/ident';
import { collisions, nameMapper, tooLong } from '../../lib/name-mapping';
import { item } from '../../lib/precheck-catalog';
import { needs } from './server-checks';
import { dataTables, type SelectedRelation } from '../selection';
import type { Check } from './context';

const list = (names: string[], max = 10) => names.slice(0, max).join(', ') + (names.length > max ? `, … (${names.length} in all)` : '');

const selectedObjects = needs(['source'], 'selected-objects', async ({ source, config, selection }) => {
  const s = await selection();
  const o = config.objects;
  const named = [...o.include, ...o.exclude, ...Object.keys(o.rename.tables), ...Object.keys(o.filters)];
  const colKeys = Object.keys(o.rename.columns);
  const missing: string[] = [];
  for (const t of new Set(named)) {
    const { schema, table } = parseTableName(t);
    const r = await source!.query('SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2', [
      schema,
      table,
    ]);
    if (!r.rowCount) missing.push(`table ${t}`);
    else if (!o.schemas.includes(schema)) missing.push(`table ${t} (its schema is not in objects.schemas)`);
  }
  for (const c of colKeys) {
    const [schema, table, column] = parseQualifiedName(c, 3);
    const rel = s.relations.find((r) => r.schema === schema && r.name === table);
    if (!rel || !rel.columns.includes(column)) missing.push(`column ${c}`);
  }
  for (const sc of s.missingSchemas) missing.unshift(`schema ${JSON.stringify(sc)}`);
  for (const sc of Object.keys(o.rename.schemas))
    if (!o.schemas.includes(sc)) missing.push(`schema ${JSON.stringify(sc)} in objects.rename.schemas (not in objects.schemas)`);
  if (missing.length) {
    return item(
      'selected-objects',
      'fail',
      `not found on the source: ${list(missing)}`,
      'correct the names in objects (qualified names use SQL syntax: "Mixed Case"."Table"), or remove them',
      { objects: missing },
    );
  }
  const tables = dataTables(s).length;
  if (!tables)
    return item('selected-objects', 'fail', `the selection holds no table (schemas: ${o.schemas.join(', ')})`, 'check objects.schemas and objects.include');
  return item('selected-objects', 'pass', `${tables} tables selected in ${o.schemas.length} schema(s); every name in objects exists`);
});

const rowFilters = needs(['source'], 'row-filters', async ({ source, config }) => {
  const bad: string[] = [];
  for (const [i, [t, filter]] of Object.entries(config.objects.filters).entries()) {
    const { schema, table } = parseTableName(t);
    try {
      // Planned, never executed: a read-only check of syntax, names and types. A
      // named (prepared) statement admits exactly one statement, so a filter
      // cannot smuggle a second one past this check.
      await source!.query({ name: `pgshift_filter_${i}`, text: `EXPLAIN SELECT 1 FROM ${qualified(schema, table)} WHERE ${filter}` });
    } catch (e) {
      bad.push(`${t}: ${(e as Error).message}`);
    }
  }
  if (bad.length)
    return item(
      'row-filters',
      'fail',
      `invalid row filter(s): ${bad.join('; ')}`,
      'write each filter as a SQL condition on its table, e.g. "created_at > now() - interval \'90 days\'"',
    );
  const n = Object.keys(config.objects.filters).length;
  return item('row-filters', 'pass', n ? `${n} row filter(s) are valid conditions` : 'no row filter');
});

const primaryKeys = needs(['source'], 'primary-keys', async ({ config, selection }) => {
  const tables = dataTables(await selection());
  // Keyed by their PRIMARY KEY is the norm; the others are listed with the UNIQUE index that keys them.
  const byIndex = tables.filter((t) => t.key && !t.key.primary);
  const keys = Object.fromEntries(byIndex.map((t) => [t.display, displayName(t.key!.index)]));
  const keyless = tables.filter((t) => !t.key);
  if (!keyless.length) {
    const how = byIndex.length ? `; ${byIndex.length} by a non-null UNIQUE index: ${list(byIndex.map((t) => `${t.display} (${keys[t.display]})`))}` : '';
    return item('primary-keys', 'pass', `every selected table has a row key: ${tables.length - byIndex.length} by PRIMARY KEY${how}`, '', { keys });
  }
  const names = keyless.map((t) => t.display);
  if (!config.mode.incremental) {
    return item(
      'primary-keys',
      'pass',
      `${names.length} table(s) without key (${list(names)}): copied by page ranges, correct as long as nobody writes during a full-only migration`,
      '',
      { keys },
    );
  }
  // Each table named with the fix; acknowledged, pgshift migrates them exactly by whole-row image (lib/selection.ts keylessTablesApplied).
  const fixes = keyless.map((t) => `${t.display}: ALTER TABLE ${t.display} ADD PRIMARY KEY (…), or objects.exclude: [${t.display}]`);
  return item(
    'primary-keys',
    'warn',
    `${names.length} table(s) without PRIMARY KEY or non-null UNIQUE key: ${list(names)} — nothing names one of their rows, ` +
      'so their changes cannot be applied by key (with duplicate rows, by key-less replay they may end up duplicated)',
    `for each table, add a key or exclude it (${list(fixes, 5)}); or acknowledge this warning (acknowledgeWarnings: [primary-keys]): ` +
      'pgshift then sets REPLICA IDENTITY FULL on them (UPDATE and DELETE log the whole old row: more WAL), copies each in one chunk ' +
      'and applies their inserts as plain inserts and each update or delete to exactly one row matching the whole old row ' +
      '(a sequential scan unless an index covers some of its columns); a change that finds no such row stops the migration',
    { objects: names, keys },
  );
});

/** True when UPDATE and DELETE are logged with (at least) the row key's columns. */
const logsKey = (t: SelectedRelation) =>
  t.replicaIdentity.mode === 'f' || (t.replicaIdentity.mode === 'd' ? t.key!.primary : t.replicaIdentity.index === t.key!.oid);

const replicaIdentityText = (t: SelectedRelation) =>
  ({ d: 'default', n: 'nothing', f: 'full', i: `index ${displayName(t.replicaIdentity.indexName ?? '?')}` })[t.replicaIdentity.mode];

const replicaIdentity = needs(['source'], 'replica-identity', async ({ config, selection }) => {
  if (!config.mode.incremental) return item('replica-identity', 'pass', 'not needed: incremental migration is off (mode.incremental: false)');
  const t = dataTables(await selection()).filter((r) => r.key && !logsKey(r));
  if (!t.length) return item('replica-identity', 'pass', "every table's replica identity logs its row key");
  return item(
    'replica-identity',
    'warn',
    `${t.length} table(s) whose replica identity does not log their row key: ${list(t.map((r) => `${r.display} (replica identity ${replicaIdentityText(r)}, row key ${displayName(r.key!.index)})`))} — ` +
      'UPDATE and DELETE are logged with the replica identity only (none at all: refused once the table is published), and pgshift applies changes by the row key',
    t
      .map((r) => `ALTER TABLE ${r.display} REPLICA IDENTITY ${r.key!.primary ? 'DEFAULT' : `USING INDEX ${displayName(r.key!.index)}`};`)
      .slice(0, 5)
      .join(' '),
    { objects: t.map((r) => r.display) },
  );
});

const triggersAndRules = needs(['source'], 'triggers-and-rules', async ({ source, config, selection }) => {
  const oids = (await selection()).relations.filter((r) => r.kind !== 'v').map((r) => r.oid);
  const r = await source!.query<{ what: string }>(
    `SELECT 'trigger ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text AS what FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgrelid = ANY($1)
     UNION ALL
     SELECT 'rule ' || quote_ident(r.rulename) || ' on ' || r.ev_class::regclass::text FROM pg_rewrite r WHERE r.rulename <> '_RETURN' AND r.ev_class = ANY($1)
     ORDER BY 1`,
    [oids],
  );
  if (!r.rows.length) return item('triggers-and-rules', 'pass', 'no user trigger or rule on the selected tables');
  const what = r.rows.map((x) => x.what);
  return item(
    'triggers-and-rules',
    'warn',
    `${what.length} trigger(s)/rule(s): ${list(what)} — ${config.objects.triggers ? 'triggers are created after the data' : 'triggers are not created on the destination (objects.triggers: false)'}; rules are not migrated; apply sessions never fire them`,
    'review them; set objects.triggers: true to create the triggers, re-create rules by hand after cutover; then acknowledge this warning',
    { objects: what },
  );
});

const unloggedTables = needs(['source'], 'unlogged-tables', async ({ config, selection }) => {
  const t = dataTables(await selection())
    .filter((r) => r.unlogged)
    .map((r) => r.display);
  if (!t.length) return item('unlogged-tables', 'pass', 'no unlogged table');
  if (!config.mode.incremental) return item('unlogged-tables', 'pass', `${t.length} unlogged table(s) (${list(t)}): copied by the full load`);
  return item(
    'unlogged-tables',
    'warn',
    `${t.length} unlogged table(s): ${list(t)} — they are not in the WAL, so their changes after the full load are not captured`,
    `ALTER TABLE … SET LOGGED, or exclude them (objects.exclude), or acknowledge`,
    { objects: t },
  );
});

const largeObjects = needs(['source'], 'large-objects', async ({ source }) => {
  const r = await source!.query<{ n: number; bytes: string }>(
    `SELECT count(*)::int AS n, pg_size_pretty(pg_total_relation_size('pg_largeobject')) AS bytes FROM pg_largeobject_metadata`,
  );
  if (!r.rows[0].n) return item('large-objects', 'pass', 'no large object');
  return item(
    'large-objects',
    'warn',
    `${r.rows[0].n} large object(s) (${r.rows[0].bytes}) exist: large objects are not migrated`,
    'move them with pg_dump --large-objects / lo_export and lo_import, or acknowledge',
  );
});

const foreignTables = needs(['source'], 'foreign-tables', async ({ selection }) => {
  const t = (await selection()).relations.filter((r) => r.kind === 'f').map((r) => r.display);
  if (!t.length) return item('foreign-tables', 'pass', 'no foreign table');
  return item(
    'foreign-tables',
    'warn',
    `${t.length} foreign table(s): ${list(t)} — not migrated (their data lives elsewhere)`,
    'create the foreign servers and tables on the destination by hand, or acknowledge',
    { objects: t },
  );
});

const materializedViews = needs(['source'], 'materialized-views', async ({ config, selection }) => {
  const m = (await selection()).relations.filter((r) => r.kind === 'm').map((r) => r.display);
  if (!m.length) return item('materialized-views', 'pass', 'no materialized view');
  if (!config.mode.incremental)
    return item('materialized-views', 'pass', `${m.length} materialized view(s) (${list(m)}): created and populated after the data`);
  return item(
    'materialized-views',
    'warn',
    `${m.length} materialized view(s): ${list(m)} — created and populated after the full load and refreshed at cutover, not kept in sync in between`,
    'acknowledge, or refresh them yourself on the destination before relying on them',
    { objects: m },
  );
});

const extensions = needs(['source', 'destination'], 'extensions', async ({ source, destination }) => {
  const used = await source!.query<{ name: string; version: string }>(
    `SELECT extname AS name, extversion AS version FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1`,
  );
  const avail = await destination!.query<{ name: string }>('SELECT name FROM pg_available_extensions');
  const have = new Set(avail.rows.map((r) => r.name));
  const missing = used.rows.filter((e) => !have.has(e.name)).map((e) => `${e.name} ${e.version}`);
  if (missing.length) {
    return item(
      'extensions',
      'fail',
      `extension(s) installed on the source but not available on the destination: ${missing.join(', ')}`,
      'install them on the destination server, or drop them from the source if unused (DROP EXTENSION …)',
      { objects: missing },
    );
  }
  return item(
    'extensions',
    'pass',
    used.rows.length
      ? `all ${used.rows.length} extension(s) are available on the destination: ${used.rows.map((e) => e.name).join(', ')}`
      : 'no extension besides plpgsql',
  );
});

const existingTargetTables = needs(['source', 'destination'], 'existing-target-tables', async ({ destination, config, selection }) => {
  const map = nameMapper(config.objects);
  const targets = (await selection()).relations.filter((r) => r.kind !== 'v').map((r) => ({ r, t: map.table(r.schema, r.name) }));
  // Catalog lookup by name: unlike to_regclass it needs no USAGE on the schema.
  const existing = await destination!.query<{ i: number }>(
    `SELECT (u.i - 1)::int AS i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(s, t, i)
      WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = u.s AND c.relname = u.t)`,
    [targets.map(({ t }) => t.schema), targets.map(({ t }) => t.table)],
  );
  const found = existing.rows.map((x) => displayName(targets[x.i].t.schema, targets[x.i].t.table));
  if (!config.mode.schema) {
    // Without schema migration the operator prepared the tables: they must be there.
    const present = new Set(existing.rows.map((x) => x.i));
    const missing = targets.filter((_, i) => !present.has(i) && targets[i].r.kind === 'r').map(({ t }) => displayName(t.schema, t.table));
    if (missing.length) {
      return item(
        'existing-target-tables',
        'fail',
        `schema migration is off (mode.schema: false) but ${missing.length} table(s) do not exist on the destination: ${list(missing)}`,
        'create them on the destination, or set mode.schema: true',
        { objects: missing },
      );
    }
    return item('existing-target-tables', 'pass', `schema migration is off: all ${found.length} target tables exist on the destination`);
  }
  if (!found.length) return item('existing-target-tables', 'pass', 'no selected table exists on the destination yet');
  if (config.existingTargetTables === 'ignore') {
    return item(
      'existing-target-tables',
      'warn',
      `${found.length} table(s) already exist on the destination: ${list(found)} — existingTargetTables is ignore: their rows are kept in the full load and overwritten by incremental changes; a differing structure may make the sync fail`,
      'acknowledge if intended, or map the tables to other names (objects.rename.tables)',
      { objects: found },
    );
  }
  return item(
    'existing-target-tables',
    'fail',
    `${found.length} table(s) already exist on the destination: ${list(found)}`,
    'map them to other names (objects.rename.tables), drop them on the destination, or set existingTargetTables: ignore',
    { objects: found },
  );
});

const renameTableLimit = needs(['source'], 'rename-table-limit', async ({ config, selection }) => {
  const map = nameMapper(config.objects);
  const n = dataTables(await selection()).length;
  if (map.renames && n > 1000) {
    return item(
      'rename-table-limit',
      'fail',
      `${n} tables selected while renaming objects; one migration renames at most 1,000 tables`,
      'split the migration (several configs with objects.include), or migrate without renames',
    );
  }
  return item('rename-table-limit', 'pass', map.renames ? `${n} tables with renames (limit 1,000)` : 'no rename configured');
});

const identifierCollisions = needs(['source'], 'identifier-collisions', async ({ config, selection }) => {
  const map = nameMapper(config.objects);
  const rels = (await selection()).relations;
  const problems: string[] = [];
  const target = (r: (typeof rels)[number]) => (r.kind === 'v' || r.kind === 'm' ? map.object(r.schema, r.name) : map.table(r.schema, r.name));
  for (const c of collisions(
    rels,
    (r) => JSON.stringify(Object.values(target(r))),
    (r) => r.display,
  )) {
    problems.push(`${c.sources.join(' and ')} would all become ${displayName(...(JSON.parse(c.target) as [string, string]))}`);
  }
  for (const r of rels) {
    const t = target(r);
    for (const c of collisions(
      r.columns,
      (col) => map.column(r.schema, r.name, col),
      (col) => col,
    )) {
      problems.push(`columns ${c.sources.map((x) => displayName(x)).join(' and ')} of ${r.display} would all become ${displayName(c.target)}`);
    }
    for (const n of [t.schema, t.table, ...r.columns.map((col) => map.column(r.schema, r.name, col))]) {
      if (tooLong(n)) problems.push(`${displayName(n)} (mapped from ${r.display}) is longer than 63 bytes and would be truncated`);
    }
  }
  if (problems.length) {
    return item(
      'identifier-collisions',
      'fail',
      `name mapping problems: ${list([...new Set(problems)], 8)}`,
      'change objects.rename or objects.nameCase so every destination name is unique and at most 63 bytes',
    );
  }
  return item('identifier-collisions', 'pass', map.renames ? 'every mapped name is unique and at most 63 bytes' : 'names are kept as they are');
});

export const OBJECT_CHECKS: Check[] = [
  selectedObjects,
  rowFilters,
  primaryKeys,
  replicaIdentity,
  triggersAndRules,
  unloggedTables,
  largeObjects,
  foreignTables,
  materializedViews,
  extensions,
  existingTargetTables,
  renameTableLimit,
  identifierCollisions,
];

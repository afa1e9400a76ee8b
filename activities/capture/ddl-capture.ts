// DDL capture on the source: an event trigger pair (ddl_command_end and
// sql_drop) per migration, created in prepare with the control schema, writes
// each DDL on the selected schemas into pgshift.ddl_log. The log is in the
// migration's publication, so its rows arrive in stream order with the data.
//
// A row holds the statement text (current_query(): the whole query string the
// client sent), its command tag, the objects it touched
// (pg_event_trigger_ddl_commands() / pg_event_trigger_dropped_objects()), the
// role, the search_path, whether the session ran with session_replication_role
// = replica (the apply skips those, as the seed does, and says so), and for
// each table it changed the table's shape before and after (columns, types,
// defaults, NOT NULL, constraints and indexes as the server deparses them under
// an empty search_path). The shape before is the one the trigger recorded last
// (pgshift.ddl_shape, seeded when the trigger is created): the apply derives
// the destination's statements from the two shapes, so it never has to parse
// the user's SQL (activities/capture/ddl-replay.ts).
//
// A table created in a selected schema is added to the publication by the
// trigger, in the transaction that creates it, before any row of it can be
// written; a table without a usable key gets REPLICA IDENTITY FULL there too.
// The trigger never makes the user's DDL fail: whatever goes wrong in it is
// recorded in the row (`problems`), and the apply reports the entry.
//
// Event triggers need a superuser (every version); without one prepare goes on
// without DDL capture (the precheck item ddl-capture warned).
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { DDL_LOG_TABLE, DDL_SHAPE_TABLE, ddlCaptureNames, publicationName, SOURCE_CONTROL_SCHEMA } from '../../lib/capture/names';
import { ident, literal, parseTableName, qualified } from '../../lib/ident';

export const DDL_LOG = qualified(SOURCE_CONTROL_SCHEMA, DDL_LOG_TABLE);
const SHAPES = qualified(SOURCE_CONTROL_SCHEMA, DDL_SHAPE_TABLE);
const SHAPE_OF = qualified(SOURCE_CONTROL_SCHEMA, 'ddl_shape_of');

/** The shape of a table as the trigger records it (PG11 and later: attgenerated is read through to_jsonb). */
const SHAPE_FUNCTION = `
CREATE OR REPLACE FUNCTION ${SHAPE_OF}(rel oid) RETURNS jsonb LANGUAGE sql STABLE SET search_path = '' AS $shape$
SELECT jsonb_build_object(
  'oid', c.oid::bigint, 'schema', n.nspname::text, 'name', c.relname::text, 'kind', c.relkind::text,
  'partition', c.relispartition, 'replident', c.relreplident::text,
  'columns', coalesce((
    SELECT jsonb_agg(jsonb_build_object(
             'num', a.attnum, 'name', a.attname::text, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
             'notnull', a.attnotnull, 'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
             'identity', a.attidentity::text, 'generated', coalesce(pg_catalog.to_jsonb(a) ->> 'attgenerated', ''),
             'collation', CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                               THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END)
           ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute a
      JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
      LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb),
  'constraints', coalesce((
    SELECT jsonb_agg(jsonb_build_object(
             'name', k.conname::text, 'type', k.contype::text, 'def', pg_catalog.pg_get_constraintdef(k.oid),
             'deferrable', k.condeferrable,
             'columns', (SELECT jsonb_agg(a.attname::text ORDER BY x.o) FROM unnest(k.conkey) WITH ORDINALITY AS x(num, o)
                           JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.num))
           ORDER BY k.conname)
      FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'c', 'f', 'x')), '[]'::jsonb),
  'indexes', coalesce((
    SELECT jsonb_agg(jsonb_build_object(
             'name', ic.relname::text, 'def', pg_catalog.pg_get_indexdef(i.indexrelid), 'unique', i.indisunique,
             'constraint', EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid))
           ORDER BY ic.relname)
      FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid), '[]'::jsonb))
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = rel
$shape$`;

const TABLES = `
CREATE TABLE IF NOT EXISTS ${DDL_LOG} (
  id          bigserial PRIMARY KEY,
  migration   text NOT NULL,
  event       text NOT NULL,
  tag         text NOT NULL,
  statement   text,
  objects     jsonb NOT NULL DEFAULT '[]',
  relations   jsonb NOT NULL DEFAULT '[]',
  role        text NOT NULL DEFAULT session_user,
  replica     boolean NOT NULL DEFAULT false,
  search_path text,
  problems    jsonb NOT NULL DEFAULT '[]',
  at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS ${SHAPES} (
  migration text NOT NULL,
  relid     oid NOT NULL,
  shape     jsonb NOT NULL,
  PRIMARY KEY (migration, relid)
)`;

/** The capture function of one migration: its schemas, table selection and publication are written into it. */
function captureFunction(config: Config): string {
  const { fn } = ddlCaptureNames(config);
  const m = literal(config.name);
  const schemas = `ARRAY[${
    config.objects.schemas
      .filter((s) => s !== SOURCE_CONTROL_SCHEMA)
      .map(literal)
      .join(', ') || "''"
  }]::text[]`;
  const pairs = (list: string[]) => literal(JSON.stringify(list.map((t) => Object.values(parseTableName(t)))));
  const pub = literal(publicationName(config));
  return `
CREATE OR REPLACE FUNCTION ${qualified(SOURCE_CONTROL_SCHEMA, fn)}() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $capture$
DECLARE
  sel text[] := ${schemas};
  inc jsonb := ${pairs(config.objects.include)}::jsonb;
  exc jsonb := ${pairs(config.objects.exclude)}::jsonb;
  objs jsonb := '[]';
  rels jsonb := '[]';
  seen oid[] := '{}';
  problems text[] := '{}';
  r record;
  rel oid;
  kind "char";
  rel_schema text;
  rel_name text;
  before_shape jsonb;
  after_shape jsonb;
  keyed boolean;
BEGIN
  -- pgshift's own statements inside this function do not capture themselves.
  IF coalesce(pg_catalog.current_setting('pgshift.ddl_internal', true), '') = 'on' THEN RETURN; END IF;
  BEGIN
    IF tg_event = 'sql_drop' THEN
      -- ALTER TABLE drops (columns, constraints, defaults) are in the shapes of its ddl_command_end row.
      IF tg_tag = 'ALTER TABLE' THEN RETURN; END IF;
      SELECT coalesce(jsonb_agg(jsonb_build_object(
               'classid', d.classid::regclass::text, 'objid', d.objid::bigint, 'subid', d.objsubid, 'type', d.object_type,
               'schema', d.schema_name, 'name', d.object_name, 'identity', d.object_identity, 'original', d.original)), '[]')
        INTO objs FROM pg_catalog.pg_event_trigger_dropped_objects() d WHERE d.schema_name = ANY (sel);
      IF objs = '[]' THEN RETURN; END IF;
      DELETE FROM ${SHAPES} s WHERE s.migration = ${m}
         AND s.relid IN (SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
                          WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0);
    ELSE
      FOR r IN SELECT c.classid, c.objid, c.objsubid, c.command_tag, c.object_type, c.schema_name, c.object_identity, c.in_extension
                 FROM pg_catalog.pg_event_trigger_ddl_commands() c WHERE c.schema_name = ANY (sel) LOOP
        objs := objs || jsonb_build_array(jsonb_build_object(
                  'classid', r.classid::regclass::text, 'objid', r.objid::bigint, 'subid', r.objsubid, 'tag', r.command_tag,
                  'type', r.object_type, 'schema', r.schema_name, 'identity', r.object_identity, 'inExtension', r.in_extension));
        rel := NULL;
        IF r.classid = 'pg_catalog.pg_class'::regclass THEN
          IF r.object_type = 'index' THEN
            SELECT i.indrelid INTO rel FROM pg_catalog.pg_index i WHERE i.indexrelid = r.objid;
          ELSE
            rel := r.objid;
          END IF;
        ELSIF r.classid = 'pg_catalog.pg_constraint'::regclass THEN
          SELECT k.conrelid INTO rel FROM pg_catalog.pg_constraint k WHERE k.oid = r.objid;
        END IF;
        IF rel IS NULL OR rel = ANY (seen) THEN CONTINUE; END IF;
        SELECT c.relkind, n.nspname, c.relname INTO kind, rel_schema, rel_name
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
        IF kind IS NULL OR kind NOT IN ('r', 'p') THEN CONTINUE; END IF;
        seen := seen || rel;
        SELECT s.shape INTO before_shape FROM ${SHAPES} s WHERE s.migration = ${m} AND s.relid = rel;
        after_shape := ${SHAPE_OF}(rel);
        INSERT INTO ${SHAPES} (migration, relid, shape) VALUES (${m}, rel, after_shape)
          ON CONFLICT (migration, relid) DO UPDATE SET shape = EXCLUDED.shape;
        rels := rels || jsonb_build_array(jsonb_build_object('relid', rel::bigint, 'before', before_shape, 'after', after_shape));
        -- A new table of the selection: published (with a usable replica identity) before any row of it is written.
        IF before_shape IS NULL AND r.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
           AND (jsonb_array_length(inc) = 0 OR inc @> jsonb_build_array(jsonb_build_array(rel_schema, rel_name)))
           AND NOT exc @> jsonb_build_array(jsonb_build_array(rel_schema, rel_name)) THEN
          BEGIN
            PERFORM pg_catalog.set_config('pgshift.ddl_internal', 'on', true);
            SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = rel AND i.indisprimary) INTO keyed;
            IF NOT keyed THEN
              EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', rel::regclass);
              problems := problems || ('warning: ' || rel::regclass::text || ' has no primary key: REPLICA IDENTITY FULL set');
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables p
                            WHERE p.pubname = ${pub} AND p.schemaname = rel_schema AND p.tablename = rel_name) THEN
              EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE %s', ${pub}, rel::regclass);
            END IF;
            PERFORM pg_catalog.set_config('pgshift.ddl_internal', 'off', true);
          EXCEPTION WHEN OTHERS THEN
            problems := problems || ('cannot publish ' || rel::regclass::text || ': ' || SQLERRM);
          END;
        END IF;
      END LOOP;
      IF objs = '[]' THEN RETURN; END IF;
    END IF;
    INSERT INTO ${DDL_LOG} (migration, event, tag, statement, objects, relations, replica, search_path, problems)
    VALUES (${m}, tg_event, tg_tag, pg_catalog.current_query(), objs, rels,
            pg_catalog.current_setting('session_replication_role') = 'replica', pg_catalog.current_setting('search_path'), pg_catalog.to_jsonb(problems));
  EXCEPTION WHEN OTHERS THEN
    -- Never fail the user's DDL: the entry says what went wrong, and the apply reports it.
    BEGIN
      INSERT INTO ${DDL_LOG} (migration, event, tag, statement, problems)
      VALUES (${m}, tg_event, tg_tag, pg_catalog.current_query(), pg_catalog.jsonb_build_array('capture failed: ' || SQLERRM));
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'pgshift: DDL capture of migration % failed: %', ${m}, SQLERRM;
    END;
  END;
END
$capture$`;
}

/**
 * Create (or refresh) the migration's DDL capture: log and shape tables, the
 * capture function and its two event triggers (ENABLE ALWAYS, so a session with
 * session_replication_role = replica is recorded as such rather than missed),
 * and the shape of every selected table as it is now. False when the role may
 * not create event triggers (not superuser): capture then goes on without DDL.
 */
export async function installDdlCapture(src: Client, config: Config, tables: { schema: string; table: string }[]): Promise<boolean> {
  const su = await src.query<{ su: boolean }>('SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user');
  if (!su.rows[0]?.su) return false;
  const names = ddlCaptureNames(config);
  const fn = qualified(SOURCE_CONTROL_SCHEMA, names.fn);
  await src.query('BEGIN');
  try {
    await src.query(TABLES);
    await src.query(SHAPE_FUNCTION);
    await src.query(captureFunction(config));
    for (const [trigger, event] of [
      [names.endTrigger, 'ddl_command_end'],
      [names.dropTrigger, 'sql_drop'],
    ] as const) {
      const exists = await src.query('SELECT 1 FROM pg_event_trigger WHERE evtname = $1', [trigger]);
      if (!exists.rowCount) await src.query(`CREATE EVENT TRIGGER ${ident(trigger)} ON ${event} EXECUTE PROCEDURE ${fn}()`);
      await src.query(`ALTER EVENT TRIGGER ${ident(trigger)} ENABLE ALWAYS`);
    }
    if (tables.length) {
      await src.query(
        `INSERT INTO ${SHAPES} (migration, relid, shape)
         SELECT $1, t.oid, ${SHAPE_OF}(t.oid) FROM unnest($2::regclass[]) AS t(oid)
         ON CONFLICT (migration, relid) DO NOTHING`,
        [config.name, tables.map((t) => qualified(t.schema, t.table))],
      );
    }
    await src.query('COMMIT');
    return true;
  } catch (e) {
    await src.query('ROLLBACK').catch(() => undefined);
    if ((e as { code?: string }).code === '42501') return false;
    throw e;
  }
}

/** Drop the migration's event triggers, function and shapes (its log rows too). Safe to repeat. */
export async function removeDdlCapture(src: Client, config: Config): Promise<void> {
  const names = ddlCaptureNames(config);
  const triggers = await src.query('SELECT 1 FROM pg_event_trigger WHERE evtname = ANY($1)', [[names.endTrigger, names.dropTrigger]]);
  if (triggers.rowCount) {
    await src.query(`DROP EVENT TRIGGER IF EXISTS ${ident(names.endTrigger)}; DROP EVENT TRIGGER IF EXISTS ${ident(names.dropTrigger)}`);
  }
  const fn = await src.query(`SELECT to_regprocedure($1) AS f`, [`${qualified(SOURCE_CONTROL_SCHEMA, names.fn)}()`]);
  if (fn.rows[0].f) await src.query(`DROP FUNCTION IF EXISTS ${qualified(SOURCE_CONTROL_SCHEMA, names.fn)}()`);
  for (const t of [SHAPES, DDL_LOG]) {
    const present = await src.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [t]);
    if (present.rows[0].t) await src.query(`DELETE FROM ${t} WHERE migration = $1`, [config.name]);
  }
}

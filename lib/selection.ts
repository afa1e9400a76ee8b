// Which relations a migration selects and which key identifies a row of each
// table: the rules, without I/O (activities/selection.ts reads the catalogs and
// applies them). Precheck, schema migration, full load, verification and change
// apply all take their answer from there, so they can never disagree.
import type { Config } from './config';
import { parseTableName } from './ident';

/** Relation kinds the selection covers: r table (partitions too), p partitioned, f foreign, v view, m materialized view. */
export type RelationKind = 'r' | 'p' | 'f' | 'v' | 'm';

/** pg_class.relreplident: d default (the primary key), n nothing, f full row, i an index. */
export type ReplicaIdentityMode = 'd' | 'n' | 'f' | 'i';

/**
 * Tables are selected by name: kinds r, p and f obey objects.include (empty =
 * all) and objects.exclude, and a partition follows the root of its partition
 * tree (naming the root names all of it). Views and materialized views hold no
 * data of their own: they follow objects.schemas alone.
 */
export function selectsByName(objects: Pick<Config['objects'], 'include' | 'exclude'>) {
  const key = (schema: string, table: string) => JSON.stringify([schema, table]);
  const names = (list: string[]) => new Set(list.map((t) => parseTableName(t)).map((t) => key(t.schema, t.table)));
  const inc = names(objects.include);
  const exc = names(objects.exclude);
  return (r: { kind: RelationKind; schema: string; name: string; root: { schema: string; name: string } }): boolean => {
    if (r.kind === 'v' || r.kind === 'm') return true;
    const ks = [key(r.schema, r.name), key(r.root.schema, r.root.name)];
    if (inc.size && !ks.some((k) => inc.has(k))) return false;
    return !ks.some((k) => exc.has(k));
  };
}

/** A UNIQUE index of a table, as the key rule sees it. */
export interface KeyCandidate {
  oid: number;
  name: string;
  primary: boolean;
  /** pg_index.indisreplident: the table's REPLICA IDENTITY USING INDEX. */
  replicaIdentity: boolean;
  /**
   * Valid, immediate (not DEFERRABLE), not partial, no expression, every key
   * column NOT NULL. Only such an index names exactly one row by plain column
   * values, can be an ON CONFLICT arbiter and can be a replica identity.
   */
  usable: boolean;
  /** Key columns in index order (INCLUDE columns are not part of the key). */
  columns: string[];
  /** format_type() of each key column. */
  types: string[];
}

/** The key that identifies a row of a table, everywhere in a migration. */
export interface RowKey {
  /** The index, by source name and oid. */
  index: string;
  oid: number;
  columns: string[];
  types: string[];
  /** The table's PRIMARY KEY. */
  primary: boolean;
  /** Which step of the rule chose it. */
  chosenAs: 'primary key' | 'replica identity' | 'unique index';
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The row key of a table, among its usable UNIQUE indexes: the PRIMARY KEY if
 * any; otherwise the replica-identity index; otherwise the one with the fewest
 * key columns, ties broken by index name (code point order). Null when no
 * index qualifies: such a table has no key (chunked by pages, and its changes
 * cannot be applied exactly once).
 */
export function chooseRowKey(candidates: KeyCandidate[]): RowKey | null {
  const usable = candidates.filter((c) => c.usable);
  const pick = (c: KeyCandidate | undefined, chosenAs: RowKey['chosenAs']): RowKey | null =>
    c ? { index: c.name, oid: c.oid, columns: c.columns, types: c.types, primary: c.primary, chosenAs } : null;
  return (
    pick(
      usable.find((c) => c.primary),
      'primary key',
    ) ??
    pick(
      usable.find((c) => c.replicaIdentity),
      'replica identity',
    ) ??
    pick([...usable].sort((a, b) => a.columns.length - b.columns.length || byCodePoint(a.name, b.name))[0], 'unique index')
  );
}

export interface ReplicaIdentity {
  mode: ReplicaIdentityMode;
  /** The index oid when mode is i. */
  index: number | null;
}

/**
 * The replica identity a migrated table gets on the destination. A table that
 * holds rows is identified there by its row key, so a change stream read from
 * the destination (two-way sync, a later migration) names rows by the same
 * columns: REPLICA IDENTITY USING INDEX the key, or DEFAULT when the key is the
 * primary key (or there is none). FULL and NOTHING are the owner's explicit
 * choice and stay. A partitioned table holds no rows of its own: it keeps its
 * replica identity as it is.
 */
export function migratedReplicaIdentity(kind: string, source: ReplicaIdentity, key: Pick<RowKey, 'oid' | 'primary'> | null): ReplicaIdentity {
  if (kind !== 'r' || source.mode === 'f' || source.mode === 'n') return source;
  return key && !key.primary ? { mode: 'i', index: key.oid } : { mode: 'd', index: null };
}

/**
 * Tables without a row key in an incremental migration. The precheck's
 * primary-keys item warns about them; once the operator acknowledges it, they
 * are migrated exactly all the same, by whole-row image:
 *  - the source gets REPLICA IDENTITY FULL on each (UPDATE and DELETE then log
 *    the whole old row, which is what names "one of these rows");
 *  - the full load copies each in one chunk, at one snapshot, recorded with
 *    the chunk's done mark (lib/capture/snapshot.ts): a row inserted between
 *    the slot's creation and the copy may sit in any page, so one snapshot is
 *    the only one that says for certain whether the copy holds it;
 *  - the apply skips the changes of source transactions that snapshot saw,
 *    applies inserts as plain inserts and updates/deletes to exactly one row
 *    matching the old image (activities/capture/apply-keyless.ts).
 * Unacknowledged, the precheck blocks the migration (and prepare and the
 * apply refuse such a table).
 */
export function keylessTablesApplied(config: Pick<Config, 'mode' | 'acknowledgeWarnings'>): boolean {
  return config.mode.incremental && config.acknowledgeWarnings.includes('primary-keys');
}

/** A table without a row key is copied in one chunk when its changes are captured (see keylessTablesApplied). */
export function copiedInOneChunk(key: RowKey | null, mode: Pick<Config['mode'], 'incremental'>): boolean {
  return !key && mode.incremental;
}

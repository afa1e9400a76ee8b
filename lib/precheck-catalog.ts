// The precheck items by id. The ids are public: operators list
// the warnings they accept in `acknowledgeWarnings`, so an id is never renamed.

export type Verdict = 'pass' | 'warn' | 'fail';

export const PRECHECK_ITEMS = {
  'source-connectivity': 'Source is reachable and the credentials work',
  'destination-connectivity': 'Destination is reachable and the credentials work',
  'server-versions': 'Destination major version is not older than the source',
  encoding: 'Source and destination use the same server encoding',
  'source-wal-level': 'Source has wal_level=logical',
  'replication-slots': 'Source has a free replication slot',
  'wal-senders': 'Source has a free WAL sender',
  'source-privileges': 'Source role can replicate and read every selected object',
  'destination-privileges': 'Destination role can create and own the migrated objects',
  'replica-role': 'Destination apply sessions can set session_replication_role=replica',
  'ddl-capture': 'DDL on the source can be captured (event trigger)',
  'cutover-fence': "The cutover's read-only fence can be set on the source",
  'wal-retention': 'Source keeps enough WAL for the migration to resume after an outage',
  'long-running-transactions': 'No long-running transaction holds back the snapshot',
  'prepared-transactions': 'No prepared transaction is pending on the source',
  'selected-objects': 'Every schema and table named in objects exists',
  'row-filters': 'Every row filter is a valid condition on its table',
  'primary-keys': 'Every table has a PRIMARY KEY or a non-null UNIQUE key',
  'replica-identity': "Every table's replica identity logs its row key",
  'triggers-and-rules': 'Triggers and rules on the source',
  'unlogged-tables': 'Unlogged tables',
  'large-objects': 'Large objects',
  'foreign-tables': 'Foreign tables',
  'materialized-views': 'Materialized views',
  extensions: 'Extensions used by the source are available on the destination',
  'existing-target-tables': 'Tables already present on the destination',
  'rename-table-limit': 'At most 1,000 tables when renaming objects',
  'identifier-collisions': 'No two objects map to the same destination name',
} as const;

export type PrecheckId = keyof typeof PRECHECK_ITEMS;
export const PRECHECK_IDS = Object.keys(PRECHECK_ITEMS) as PrecheckId[];

export interface PrecheckItem {
  id: PrecheckId;
  title: string;
  verdict: Verdict;
  /** What was found (never contains a secret). */
  cause: string;
  /** What the operator should do; empty on pass. */
  fix: string;
  /** Objects concerned, in display syntax (app."Order Items"). */
  objects?: string[];
  /** Row keys of the tables not keyed by their PRIMARY KEY: table → the UNIQUE index that keys it (display syntax). */
  keys?: Record<string, string>;
  /** True when a warning is listed in acknowledgeWarnings. */
  acknowledged?: boolean;
  /** Set on failures caused by the invocation itself (secrets, unreachable hosts): CLI exit 2. */
  inputProblem?: boolean;
}

export function item(id: PrecheckId, verdict: Verdict, cause: string, fix = '', extra: Partial<PrecheckItem> = {}): PrecheckItem {
  return { id, title: PRECHECK_ITEMS[id], verdict, cause, fix, ...extra };
}

// One DDL statement of the plan, before ordering.
import type { SchemaStage } from '../../lib/migration-state';

export const STAGES: SchemaStage[] = ['before-data', 'keys', 'post-data'];

export interface Statement {
  stage: SchemaStage;
  kind: string;
  /** Destination object in display syntax (what the UI and errors show). */
  object: string;
  sql: string;
  /** Catalog objects (objKey) this statement creates. */
  owns: string[];
  /** Prerequisites (objKey) beyond the pg_depend entries of the owned objects. */
  after: string[];
  /**
   * A key or index of one plain table (destination display name): the full load
   * builds it as soon as that table is copied, while other tables still copy.
   */
  table?: string;
  /** A foreign key's referenced plain table: built early once both tables' keys exist. */
  references?: string;
  /** Planned only when another statement needs it (an extension outside the selected schemas). */
  optional?: boolean;
  /** Dropped silently (no warning) when what it decorates is not created: comments. */
  quiet?: boolean;
  /** Breaks a dependency cycle by moving parts into later statements (pg_dump's separate DEFAULTs). */
  split?: () => Statement[];
}

/** Statement kinds in the order they are preferred when several are ready (pg_dump-like). */
export const KIND_ORDER = [
  'schema',
  'extension',
  'collation',
  'enum',
  'range',
  'domain',
  'composite',
  'function',
  'procedure',
  'sequence',
  'table',
  'partition',
  'default',
  'check',
  'replica-identity',
  'view',
  'primary-key',
  'replica-key',
  'unique',
  'index',
  'exclusion',
  // after the index builds, so those run back to back (in parallel)
  'index-attach',
  'foreign-key',
  'materialized-view',
  'sequence-owned-by',
  'statistics',
  'trigger',
  'comment',
  'owner',
  'grant',
];

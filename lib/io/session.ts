// Every database session of a migration, opened in one place: named
// `pgshift <purpose> <migration>` (pg_stat_activity shows who does what, and
// the fence finds the writers by name) and started with its purpose's settings
// profile. One definition of each profile and of which purposes write, so a
// new writer cannot be forgotten by the fence.
import type { Client } from 'pg';
import type { Config } from '../config';
import { type ClientMode, connect, type Side } from './pg';

/**
 * Settings under which values cross as text without changing: COPY text rows,
 * key-range bounds, row hashes. Both ends use them, so what the source prints
 * the destination reads back as the same value.
 */
const DATA_SETTINGS = {
  // Dates print ISO 8601 and ambiguous input reads year first, whatever each server's default.
  DateStyle: 'ISO, YMD',
  // The default interval style, the one every server reads back exactly.
  IntervalStyle: 'postgres',
  // timestamptz prints with an explicit +00 offset: no value depends on a server's zone.
  TimeZone: 'UTC',
  // Floats print with every digit needed to read back the identical value.
  extra_float_digits: '3',
  // Unambiguous bytea text, the same on every version.
  bytea_output: 'hex',
  // Text crosses as UTF-8, converted from and to each server's encoding (node-postgres reads UTF-8).
  client_encoding: 'UTF8',
};

export const SETTINGS_PROFILES = {
  data: DATA_SETTINGS,
  /**
   * Schema work: with an empty search_path the server prints every name outside
   * pg_catalog schema-qualified (so it can be mapped) and resolves the plan's
   * statements only as written on the destination. Deparsed text holds
   * literals (a DEFAULT timestamp, a float CHECK), printed on the source and
   * parsed on the destination under the data settings.
   */
  catalog: { ...DATA_SETTINGS, search_path: '' },
  /**
   * Checks that must not affect the workload: a write would fail, a lock held
   * by the workload is not waited on for long, one slow query cannot hang the check.
   */
  check: { default_transaction_read_only: 'on', lock_timeout: '5s', statement_timeout: '120s' },
  /** The server's defaults: the session writes no values as text. */
  plain: {},
} as const;

export type SettingsProfile = keyof typeof SETTINGS_PROFILES;

/** What a purpose decides for its sessions: settings, whether they write, source control objects, how its client talks (lib/io/pg.ts ClientMode). */
type PurposeSpec = { profile: SettingsProfile; writer: boolean; sourceControl?: boolean } & ClientMode;

/**
 * What a session is for: its profile, whether it writes to the destination
 * for the migration (then a fence ends it rather than wait), and whether it
 * writes pgshift's own objects on the source (slot, publication, heartbeat,
 * control schema): those sessions stay read-write under the cutover's
 * read-only fence, which they set, lift or outlive.
 */
export const PURPOSES = {
  precheck: { profile: 'check', writer: false },
  evaluate: { profile: 'check', writer: false },
  prepare: { profile: 'plain', writer: true, sourceControl: true },
  schema: { profile: 'catalog', writer: true },
  indexes: { profile: 'catalog', writer: true },
  plan: { profile: 'data', writer: true },
  copy: { profile: 'data', writer: true },
  sequences: { profile: 'plain', writer: true },
  analyze: { profile: 'plain', writer: true },
  // A piece's statements go out together (activities/capture/apply-batch.ts), not one round trip each.
  apply: { profile: 'data', writer: true, pipelined: true },
  // The source side of change capture: heartbeat, lag, rows read back; its replication session too.
  capture: { profile: 'data', writer: false, sourceControl: true },
  // Its destination reads a range's COPY straight into the fingerprint (lib/io/copy-tap.ts).
  verify: { profile: 'data', writer: false, tappable: true },
  // Incremental verification removes the keys it compared from the destination's touched-key queue.
  'verify-incremental': { profile: 'data', writer: true },
  'verify-schema': { profile: 'catalog', writer: false },
  // The fence runs in it (and never ends itself); so does the release of the source.
  abort: { profile: 'plain', writer: false, sourceControl: true },
  // The cutover's fence on the source and the steps on the destination.
  cutover: { profile: 'plain', writer: false, sourceControl: true },
} as const satisfies Record<string, PurposeSpec>;

export type Purpose = keyof typeof PURPOSES;

/** PostgreSQL keeps the first 63 bytes of application_name. */
const NAME_BYTES = 63;

/** `pgshift <purpose> <migration>`, cut to what the server keeps (at a character boundary). */
export function applicationName(purpose: Purpose, migration: string): string {
  let name = `pgshift ${purpose} ${migration}`;
  while (Buffer.byteLength(name) > NAME_BYTES) name = name.slice(0, -1);
  return name;
}

/** application_name of every session that writes to the destination for `migration`. */
export const writerApplicationNames = (migration: string): string[] =>
  (Object.keys(PURPOSES) as Purpose[]).filter((p) => PURPOSES[p].writer).map((p) => applicationName(p, migration));

type SessionConfig = Pick<Config, 'name' | 'source' | 'destination'>;

/** Sessions that keep writing pgshift's own source objects while the source database is fenced read-only. */
const SOURCE_CONTROL_SETTINGS = { default_transaction_read_only: 'off' };

async function applyProfile(c: Client, profile: SettingsProfile, extra: Record<string, string> = {}): Promise<void> {
  const settings = Object.entries({ ...SETTINGS_PROFILES[profile], ...extra });
  if (!settings.length) return;
  await c.query(
    'SELECT pg_catalog.set_config(s.name, s.value, false) FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS s(name, value)',
    [settings.map(([k]) => k), settings.map(([, v]) => v)],
  );
}

/**
 * A session on one side for one purpose; the caller ends it. Errors are lib/io/pg.ts ConnectionSetupError.
 * `endsWith`: the signal that ends it (default: the activity's cancellation; see connect).
 */
export async function session(config: SessionConfig, side: Side, purpose: Purpose, endsWith?: AbortSignal | null): Promise<Client> {
  const p: PurposeSpec = PURPOSES[purpose];
  const c = await connect(config, side, applicationName(purpose, config.name), endsWith, p);
  try {
    await applyProfile(c, p.profile, side === 'source' && p.sourceControl ? SOURCE_CONTROL_SETTINGS : {});
    return c;
  } catch (e) {
    await c.end().catch(() => undefined);
    throw e;
  }
}

const close = (c: Client) => c.end().catch(() => undefined);

/** Run `fn` with a session that is always closed afterwards. */
export async function withSession<T>(config: SessionConfig, side: Side, purpose: Purpose, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await session(config, side, purpose);
  try {
    return await fn(c);
  } finally {
    await close(c);
  }
}

/**
 * Run `fn` with a session on each side, opened at once. When one side fails to
 * connect, the other is closed before the failure (the source's first) is thrown;
 * both are always closed afterwards. Closing also ends a session mid-COPY,
 * where a ROLLBACK would queue behind the stream.
 */
export async function withSessions<T>(config: SessionConfig, purpose: Purpose, fn: (src: Client, dst: Client) => Promise<T>): Promise<T> {
  const [src, dst] = await Promise.allSettled([session(config, 'source', purpose), session(config, 'destination', purpose)]);
  if (src.status === 'rejected' || dst.status === 'rejected') {
    await Promise.all([src, dst].map((s) => (s.status === 'fulfilled' ? close(s.value) : Promise.resolve())));
    throw src.status === 'rejected' ? src.reason : (dst as PromiseRejectedResult).reason;
  }
  try {
    return await fn(src.value, dst.value);
  } finally {
    await Promise.all([close(src.value), close(dst.value)]);
  }
}

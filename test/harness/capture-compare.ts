// Compare a source table with its destination copy: every row's text, in key
// order, read with the same exact text settings on both ends.
import type { Client } from 'pg';
import type { Side } from './env';
import { withSession } from '../../lib/io/session';
import type { Config } from '../../lib/config';
import { parseLsn } from '../../lib/capture/lsn';
import { readCapture } from '../../activities/capture/control';

const SETTINGS = "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET bytea_output = 'hex'";

async function rows(side: Side, select: string): Promise<string[]> {
  const c: Client = await side.cluster.connect(side.database);
  try {
    await c.query(SETTINGS);
    return (await c.query<{ r: string }>(select)).rows.map((x) => x.r);
  } finally {
    await c.end();
  }
}

/** Row texts of `table` (ordered by `orderBy`), optionally only those matching `where`. */
export async function tableRows(side: Side, table: string, orderBy: string, where = 'true'): Promise<string[]> {
  return rows(side, `SELECT t::text AS r FROM ${table} AS t WHERE ${where} ORDER BY ${orderBy}`);
}

export async function expectSameRows(source: Side, destination: Side, t: { source: string; destination?: string; orderBy: string; where?: string }) {
  const [a, b] = await Promise.all([tableRows(source, t.source, t.orderBy, t.where), tableRows(destination, t.destination ?? t.source, t.orderBy)]);
  return { source: a, destination: b };
}

/** The source's WAL insert position now (covers every commit so far, flushed or not). */
export async function sourceInsertLsn(source: Side): Promise<string> {
  const [r] = await source.sql<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
  return r.l;
}

export async function appliedLsn(config: Config): Promise<bigint> {
  const row = await withSession(config, 'destination', 'verify', (c) => readCapture(c, config.name));
  return parseLsn(row!.appliedLsn);
}

// Which TOAST compression the full load's values get on the destination,
// decided in one place: lz4 when fullLoad.toastCompression asks for it and the
// server has it (14 and later, built with lz4), else the server's own default.
// Compression dominates loading wide values: pglz costs several times lz4's CPU.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';

/** The setting's row where lz4 can be chosen (no row before 14, where pglz is the only method). */
const LZ4_SETTING = `FROM pg_catalog.pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)`;

/** Set lz4 for this copy session's values, where asked for and available. */
export async function useLoadCompression(dst: Client, config: Pick<Config, 'fullLoad'>): Promise<void> {
  if (config.fullLoad.toastCompression === 'lz4') await dst.query(`SELECT pg_catalog.set_config(name, 'lz4', false) ${LZ4_SETTING}`);
}

/** The method the copy sessions' values will be compressed with (useLoadCompression), read on any destination session. */
export async function loadCompression(dst: Client, config: Pick<Config, 'fullLoad'>): Promise<string> {
  if (config.fullLoad.toastCompression === 'lz4' && ((await dst.query(`SELECT 1 ${LZ4_SETTING}`)).rowCount ?? 0) > 0) return 'lz4';
  const r = await dst.query<{ method: string | null }>(`SELECT current_setting('default_toast_compression', true) AS method`);
  return r.rows[0].method ?? 'pglz';
}

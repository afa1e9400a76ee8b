// Abort on the destination: fence it (no write of this migration gets through
// again), then — only when config.abort.dropCreatedObjects asks — drop what this
// migration created there, newest first, never an object that already existed.
import type { Config } from '../lib/config';
import { parseQualifiedName, qualified } from '../lib/ident';
import { withSession } from '../lib/io/session';
import { ensureControlSchema, fence } from './control';

const DROP_KEYWORD: Record<string, string> = {
  table: 'TABLE',
  partition: 'TABLE',
  view: 'VIEW',
  'materialized-view': 'MATERIALIZED VIEW',
  sequence: 'SEQUENCE',
  function: 'FUNCTION',
  procedure: 'PROCEDURE',
  enum: 'TYPE',
  composite: 'TYPE',
  range: 'TYPE',
  domain: 'DOMAIN',
  collation: 'COLLATION',
};

/** `app."f(x)"(integer, text)` → quoted name and the argument list, split at the first unquoted "(". */
export function splitSignature(object: string): { name: string; args: string } {
  let quoted = false;
  for (let i = 0; i < object.length; i++) {
    if (object[i] === '"') quoted = !quoted;
    else if (object[i] === '(' && !quoted) return { name: object.slice(0, i), args: object.slice(i) };
  }
  return { name: object, args: '' };
}

export interface AbortCleanup {
  dropped: string[];
  /** Objects that could not be dropped (something else depends on them), with the reason. */
  kept: string[];
}

export async function abortDestination(input: { config: Config }): Promise<AbortCleanup> {
  const { config } = input;
  return withSession(config, 'destination', 'abort', async (c) => {
    await ensureControlSchema(c);
    await fence(c, config.name, 'aborted');
    const out: AbortCleanup = { dropped: [], kept: [] };
    if (!config.abort.dropCreatedObjects) return out;
    const plan = await c
      .query<{ kind: string; object: string }>(
        `SELECT kind, object FROM pgshift.schema_statements
        WHERE migration = $1 AND state = 'applied' AND kind = ANY($2) ORDER BY seq DESC`,
        [config.name, Object.keys(DROP_KEYWORD)],
      )
      .catch((e) => {
        if ((e as { code?: string }).code === '42P01') return { rows: [] }; // no schema was ever planned
        throw e;
      });
    for (const { kind, object } of plan.rows) {
      const { name, args } = splitSignature(object);
      const [schema, rel] = parseQualifiedName(name, 2);
      try {
        // No CASCADE: an object of the user's that depends on ours stays, and so does ours.
        await c.query(`DROP ${DROP_KEYWORD[kind]} IF EXISTS ${qualified(schema, rel)}${args}`);
        out.dropped.push(`${kind} ${object}`);
      } catch (e) {
        out.kept.push(`${kind} ${object}: ${(e as Error).message}`);
      }
    }
    // The copy plan of dropped tables is meaningless now.
    if (out.dropped.length) await c.query('DELETE FROM pgshift.chunks WHERE migration = $1', [config.name]).catch(() => undefined);
    return out;
  });
}

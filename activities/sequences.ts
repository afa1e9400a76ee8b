// Sequences: set every destination sequence from the source (setval with
// is_called), after the full load and again at cutover. The seed leaves this
// to the operator; pgshift does it for every sequence of the selected schemas.
import type { Config } from '../lib/config';
import { qualified } from '../lib/ident';
import { nameMapper } from '../lib/name-mapping';
import { withSession } from '../lib/io/session';
import { fenced } from './control';
import { about } from './retry';

export async function syncSequences(input: { config: Config; runToken: string }): Promise<{ sequences: number }> {
  const { config, runToken } = input;
  const map = nameMapper(config.objects);
  const values = await withSession(config, 'source', 'sequences', async (src) => {
    const seqs = await src.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND n.nspname = ANY($1)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2`,
      [config.objects.schemas],
    );
    const out: { schema: string; name: string; last: string; called: boolean }[] = [];
    for (const s of seqs.rows) {
      const v = await src
        .query<{ last_value: string; is_called: boolean }>(`SELECT last_value::text, is_called FROM ${qualified(s.schema, s.name)}`)
        .catch((err) => Promise.reject(about(`sequence ${qualified(s.schema, s.name)} on the source`, err)));
      out.push({ ...s, last: v.rows[0].last_value, called: v.rows[0].is_called });
    }
    return out;
  });
  await withSession(config, 'destination', 'sequences', (dst) =>
    fenced(dst, config.name, runToken, async () => {
      for (const s of values) {
        const t = map.object(s.schema, s.name);
        const name = qualified(t.schema, t.table);
        await dst
          .query('SELECT setval($1::regclass, $2::bigint, $3)', [name, s.last, s.called])
          .catch((err) => Promise.reject(about(`sequence ${name} on the destination`, err)));
      }
    }),
  );
  return { sequences: values.length };
}

// From the source catalogs to the ordered statement list.
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { FAILURE } from '../retry';
import { nameProblems } from './collide';
import { orderStatements } from './order';
import { readCatalog } from './read';
import { renderSchema } from './render';
import { schemaNames } from './scope';
import type { Statement } from './statement';

export interface Plan {
  statements: Statement[];
  warnings: string[];
}

/** Objects of other schemas the plan relies on: they must already exist on the destination. */
async function describeOutside(src: Client, outside: Map<string, string>): Promise<string[]> {
  if (!outside.size) return [];
  const keys = [...outside.keys()];
  const r = await src.query<{ key: string; type: string; identity: string }>(
    `SELECT k AS key, o.type, o.identity
       FROM unnest($1::text[]) AS k,
            LATERAL pg_catalog.pg_identify_object(split_part(k, ':', 1)::pg_catalog.regclass, split_part(k, ':', 2)::oid, 0) AS o
      WHERE o.identity IS NOT NULL`,
    [keys],
  );
  return r.rows.map((o) => `${o.type} ${o.identity} is outside the selected schemas but ${outside.get(o.key)} needs it: it must exist on the destination`);
}

/** `src`: a source session with the catalog settings (lib/io/session.ts purpose `schema`). */
export async function buildPlan(src: Client, config: Config): Promise<Plan> {
  // One snapshot for every catalog read, so the plan is consistent even while DDL runs on the source.
  await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const cat = await readCatalog(src, config);
    const names = schemaNames(cat, config);
    const problems = nameProblems(cat, names);
    if (problems.length) {
      throw ApplicationFailure.nonRetryable(
        `names clash or are too long on the destination after objects.rename / objects.nameCase; nothing was created. ` +
          `Give these objects explicit names in objects.rename: ${problems.join('; ')}`,
        FAILURE.invalidInput,
      );
    }
    const rendered = renderSchema(cat, names, config);
    const ordered = orderStatements(rendered.statements, cat, rendered.excluded);
    const outside = await describeOutside(src, ordered.outside);
    return { statements: ordered.statements, warnings: [...rendered.warnings, ...ordered.warnings, ...outside] };
  } finally {
    await src.query('COMMIT').catch(() => undefined);
  }
}

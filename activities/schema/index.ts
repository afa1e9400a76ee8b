// Schema migration: plan from the source catalogs, apply by stage.
//  - read.ts       catalog reads on the source (server-rendered definitions)
//  - scope.ts      destination names (config mapping + catalog knowledge)
//  - sqltext.ts    tokens of deparsed SQL
//  - rewrite.ts    mapping names inside deparsed SQL, or refusing to
//  - render.ts     DDL per object and stage (acl.ts: GRANTs)
//  - order.ts      dependency order (pg_depend), stage promotion, cycle breaking
//  - collide.ts    clashing / over-long names, before anything is created
//  - plan.ts       the above, in order
//  - store.ts      the plan table on the destination
//  - apply.ts      fenced, idempotent application of one stage
import type { Config } from '../../lib/config';
import type { SchemaStage, SchemaStageProgress } from '../../lib/migration-state';
import { endpointLabel } from '../../lib/migration-ids';
import { withSession } from '../../lib/io/session';
import { fenced } from '../control';
import { heartbeat } from '../heartbeat';
import { applyStage, applyTableStatements } from './apply';
import { buildPlan } from './plan';
import { ensurePlanTables, readPlanSummary, storePlan, summarize } from './store';

export interface SchemaPlanSummary {
  statements: number;
  byStage: Record<SchemaStage, number>;
  byKind: Record<string, number>;
  /** Objects reported instead of created (triggers off by default, unsafe rewrites, …). */
  warnings: string[];
  /** The plan was already stored by an earlier attempt and is returned as it is. */
  reused: boolean;
}

export interface SchemaInput {
  config: Config;
  runToken: string;
}

/**
 * Plan the schema once per migration and store it on the destination.
 * Idempotent: an existing plan is returned without reading the source again.
 * Name clashes after mapping fail (non-retryable) before anything is created.
 */
export async function planSchema(input: SchemaInput): Promise<SchemaPlanSummary> {
  const { config, runToken } = input;
  return withSession(config, 'destination', 'schema', async (dst) => {
    const existing = await readPlanSummary(dst, config.name);
    if (existing) return { ...existing, reused: true };
    heartbeat('reading the source catalogs');
    const plan = await withSession(config, 'source', 'schema', (src) => buildPlan(src, config));
    heartbeat(`storing ${plan.statements.length} statements`);
    await ensurePlanTables(dst);
    const stored = await fenced(dst, config.name, runToken, () => storePlan(dst, config.name, endpointLabel(config.source), plan.statements, plan.warnings));
    if (!stored) return { ...(await readPlanSummary(dst, config.name))!, reused: true };
    return { ...summarize(plan.statements, plan.warnings), reused: false };
  });
}

/** Keys and indexes of one table, built as soon as its full load is done. */
export async function buildTableIndexes(input: SchemaInput & { table: string }): Promise<{ applied: number; total: number }> {
  return applyTableStatements(input);
}

export async function applySchemaStage(input: SchemaInput & { stage: SchemaStage }): Promise<SchemaStageProgress> {
  return applyStage(input);
}

// The schema phases: the plan (generated from the source catalogs once, stored
// on the destination) and its three stages, each applied by one activity.
import type { SchemaStage } from '../../lib/migration-state';
import { DONE, type PhaseContext, type PhaseOutcome } from './contract';

/** Plan the schema, then apply its before-data stage. */
export async function runSchema(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { config, state, acts, src } = ctx;
  const plan = await acts.planSchema.executeWithOptions(
    { startToCloseTimeout: '30m', heartbeatTimeout: ctx.heartbeatTimeout, summary: `plan schema of ${src} from its catalogs` },
    [{ config, runToken: state.runToken }],
  );
  state.schema.statements = plan.statements;
  state.schema.byKind = plan.byKind;
  state.schema.warnings = plan.warnings.slice(0, 50);
  return applySchemaStage(ctx, 'before-data', plan.byStage['before-data']);
}

export async function applySchemaStage(ctx: PhaseContext, stage: SchemaStage, planned?: number): Promise<PhaseOutcome> {
  const { config, state, acts } = ctx;
  state.schema.stages[stage] = await acts.applySchemaStage.executeWithOptions(
    { startToCloseTimeout: '6h', heartbeatTimeout: ctx.heartbeatTimeout, summary: `schema ${stage}${planned !== undefined ? `: ${planned} statements` : ''}` },
    [{ config, runToken: state.runToken, stage }],
  );
  return DONE;
}

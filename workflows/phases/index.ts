// Every phase of MigrationWorkflow by name (lib/migration-state.ts PHASES
// orders them); each follows the contract in contract.ts.
import type { Phase as PhaseName } from '../../lib/migration-state';
import type { Phase } from './contract';
import { runFullLoad } from './full-load';
import { runAnalyze, runSequences } from './post-load';
import { runPrecheck, runPrepare } from './precheck';
import { applySchemaStage, runSchema } from './schema';
import { runVerify } from './verify';
import { runCatchUp, runIncremental } from './incremental';
import { runCutover } from './cutover';

export type RunnablePhase = Exclude<PhaseName, 'done' | 'aborted' | 'failed'>;

export const PHASE_RUNNERS: Record<RunnablePhase, Phase> = {
  precheck: runPrecheck,
  prepare: runPrepare,
  schema: runSchema,
  'full-load': runFullLoad,
  keys: (ctx) => applySchemaStage(ctx, 'keys'),
  'catch-up': runCatchUp,
  'post-data': (ctx) => applySchemaStage(ctx, 'post-data'),
  sequences: runSequences,
  analyze: runAnalyze,
  verify: runVerify,
  incremental: runIncremental,
  cutover: runCutover,
};

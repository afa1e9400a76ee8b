// pgshift client library: typed functions over a Temporal client (client/operations.ts), used
// by the CLI and by application code. Workflow functions and input types are re-exported for
// callers who prefer client.workflow.start(...) directly.
export * from './operations';
export { EvaluationWorkflow, MigrationWorkflow } from '../workflows';
export type { EvaluationInput } from '../workflows/evaluation';
export type { CutoverAnswer, CutoverRequest, MigrationStatus } from '../workflows/migration';
export type { VerificationResult } from '../workflows/verification';
export type { MigrationInput, MigrationState, Throttle } from '../lib/migration-state';
export type { Config, ConfigInput } from '../lib/config';
export { parseConfig, loadConfigFile, ConfigError } from '../lib/io/config-load';
export type { EvaluationReport } from '../lib/report';
export { connectClient, ensureSearchAttributes, resolveTemporal } from '../lib/io/temporal';

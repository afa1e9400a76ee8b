// Workflow entry points registered by the worker (bundled by Temporal).
export { EvaluationWorkflow } from './evaluation';
export { MigrationWorkflow } from './migration';
export { VerificationWorkflow } from './verification';

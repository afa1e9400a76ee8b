// The client library's operations: typed functions over a Temporal client (the CLI's and
// application code's). They name the workflows by type name and load only their signal and
// query definitions, not the workflow code nor the config schema: the CLI bundles this module
// and starts faster for each module it leaves out. client/index.ts is the library's entry.
import { randomBytes } from 'node:crypto';
import { type Client, type WorkflowExecutionInfo, WorkflowUpdateFailedError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../lib/config';
import { applyPendingBeats, type PendingBeat } from '../lib/live-status';
import type { Throttle } from '../lib/migration-state';
import { endpointLabel, evaluationWorkflowId, migrationWorkflowId, toWorkflowId } from '../lib/migration-ids';
import type { EvaluationReport } from '../lib/report';
import { SA_DESTINATION, SA_ENVIRONMENT, SA_PHASE, SA_SOURCE } from '../lib/search-attributes';
import type { EvaluationWorkflow, MigrationWorkflow } from '../workflows';
import {
  abortSignal,
  configQuery,
  type CutoverAnswer,
  type CutoverRequest,
  type MigrationStatus,
  pauseSignal,
  ddlSkipSignal,
  requestCutoverUpdate,
  resumeSignal,
  statusQuery,
  throttleSignal,
} from '../workflows/definitions';
import type { VerificationResult, VerificationWorkflow } from '../workflows/verification';

export interface CallOptions {
  /** Overrides config.taskQueue. */
  taskQueue?: string;
}

function searchAttributes(config: Config, phase: string) {
  return [
    { key: SA_PHASE, value: phase },
    { key: SA_SOURCE, value: endpointLabel(config.source) },
    { key: SA_DESTINATION, value: endpointLabel(config.destination) },
    ...(config.environmentTag ? [{ key: SA_ENVIRONMENT, value: config.environmentTag }] : []),
  ];
}

/** Start an evaluation (compatibility report + precheck); resolves with the report. */
export async function evaluate(client: Client, config: Config, opts: CallOptions = {}): Promise<{ workflowId: string; report: EvaluationReport }> {
  const workflowId = evaluationWorkflowId(config.name, new Date(), randomBytes(3).toString('hex'));
  const handle = await client.workflow.start<typeof EvaluationWorkflow>('EvaluationWorkflow', {
    taskQueue: opts.taskQueue ?? config.taskQueue,
    workflowId,
    args: [{ config }],
    typedSearchAttributes: searchAttributes(config, 'evaluating'),
    staticSummary: `pgshift evaluation of ${config.name}: ${endpointLabel(config.source)} → ${endpointLabel(config.destination)}`,
    staticDetails: `Compatibility report and precheck, read-only on the source. Environment: ${config.environmentTag || '(none)'}`,
  });
  return { workflowId, report: await handle.result() };
}

/** True when at least one worker polled the task queue recently. */
export async function hasWorkers(client: Client, taskQueue: string): Promise<boolean> {
  const r = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: 1 },
    taskQueueType: 1,
  });
  return (r.pollers?.length ?? 0) > 0;
}

/** pgshift migrations and evaluations, newest first. */
export async function list(client: Client, limit = 50): Promise<WorkflowExecutionInfo[]> {
  const out: WorkflowExecutionInfo[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowType IN ('MigrationWorkflow', 'EvaluationWorkflow', 'VerificationWorkflow')` })) {
    out.push(wf);
    if (out.length >= limit) break;
  }
  return out;
}

/** Start a migration; its workflow id is pgshift-<name> (or opts.workflowId). */
export async function startMigration(client: Client, config: Config, opts: CallOptions & { workflowId?: string } = {}): Promise<string> {
  const workflowId = opts.workflowId ?? migrationWorkflowId(config.name);
  const modes = Object.entries(config.mode)
    .filter(([, on]) => on)
    .map(([m]) => m)
    .join(' + ');
  await client.workflow.start<typeof MigrationWorkflow>('MigrationWorkflow', {
    taskQueue: opts.taskQueue ?? config.taskQueue,
    workflowId,
    args: [{ config }],
    workflowIdConflictPolicy: 'FAIL',
    typedSearchAttributes: searchAttributes(config, 'starting'),
    staticSummary: `pgshift ${config.name}: ${endpointLabel(config.source)} → ${endpointLabel(config.destination)} (${modes})`,
    staticDetails: [
      `Migration **${config.name}**, environment ${config.environmentTag || '(none)'}.`,
      `Schemas: ${config.objects.schemas.join(', ')}; include ${config.objects.include.length || 'all'}, exclude ${config.objects.exclude.length}.`,
      `Signals: throttle, pause, resume, abort, cutover, ddlSkip. Update: requestCutover. Query: status.`,
    ].join('\n'),
  });
  return workflowId;
}

/**
 * Current status of a migration (by name or workflow id). The workflow counts a
 * chunk when it is done; the rows of chunks still copying come from their
 * heartbeats (pending activities), so a large chunk's progress is live too.
 */
export async function getStatus(client: Client, idOrName: string): Promise<MigrationStatus> {
  const handle = client.workflow.getHandle(toWorkflowId(idOrName));
  const status = await handle.query(statusQuery);
  const f = status.state.fullLoad;
  const c = status.state.capture;
  const live = (f && !f.finishedAt) || (c && !status.state.finishedAt);
  if (!live) return status;
  const pending = (await handle.describe().catch(() => null))?.raw.pendingActivities ?? [];
  const beats: PendingBeat[] = [];
  for (const a of pending) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (a.activityType?.name && payload) beats.push({ activity: a.activityType.name, details: defaultPayloadConverter.fromPayload(payload) });
  }
  applyPendingBeats(status.state, beats);
  return status;
}

export async function pause(client: Client, idOrName: string): Promise<void> {
  await client.workflow.getHandle(toWorkflowId(idOrName)).signal(pauseSignal);
}

export async function resume(client: Client, idOrName: string): Promise<void> {
  await client.workflow.getHandle(toWorkflowId(idOrName)).signal(resumeSignal);
}

/** Skip one captured DDL entry the apply stopped at (`pgshift ddl skip ID ENTRY`); the signal is recorded in the workflow history. */
export async function skipDdl(client: Client, idOrName: string, entry: number): Promise<void> {
  if (!Number.isSafeInteger(entry) || entry <= 0) throw new Error(`DDL entry ${entry}: expected the positive entry number status shows`);
  await client.workflow.getHandle(toWorkflowId(idOrName)).signal(ddlSkipSignal, entry);
}

export async function abort(client: Client, idOrName: string): Promise<void> {
  await client.workflow.getHandle(toWorkflowId(idOrName)).signal(abortSignal);
}

export async function throttle(client: Client, idOrName: string, t: Partial<Throttle>): Promise<void> {
  await client.workflow.getHandle(toWorkflowId(idOrName)).signal(throttleSignal, t);
}

/**
 * Ask for the cutover (`pgshift cutover ID`): accepted — the steps follow in
 * status — or refused with the reason (still in full load, before the
 * consistency point, lag above cutover.maxLagSeconds, paused, …).
 */
export async function cutover(client: Client, idOrName: string, req: CutoverRequest = {}): Promise<CutoverAnswer> {
  try {
    return await client.workflow.getHandle(toWorkflowId(idOrName)).executeUpdate(requestCutoverUpdate, { args: [req] });
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) return { accepted: false, reason: (e.cause as Error | undefined)?.message ?? e.message };
    throw e;
  }
}

/** Wait for the migration to finish; resolves with its final status. */
export async function waitForMigration(client: Client, idOrName: string): Promise<MigrationStatus> {
  return client.workflow.getHandle<typeof MigrationWorkflow>(toWorkflowId(idOrName)).result();
}

/**
 * Verify a migration on demand (`pgshift verify ID`): schema and/or every row,
 * with the migration's own config, as a VerificationWorkflow.
 */
export async function verify(
  client: Client,
  idOrName: string,
  what: { schema?: boolean; data?: boolean } = {},
): Promise<{ workflowId: string; result: VerificationResult }> {
  const migrationId = toWorkflowId(idOrName);
  const config = await client.workflow.getHandle(migrationId).query(configQuery);
  const workflowId = `${migrationId}-verify-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(3).toString('hex')}`;
  const schema = what.schema ?? config.mode.schema;
  const data = what.data ?? config.mode.full;
  const handle = await client.workflow.start<typeof VerificationWorkflow>('VerificationWorkflow', {
    taskQueue: config.taskQueue,
    workflowId,
    args: [{ config, schema, data }],
    typedSearchAttributes: searchAttributes(config, 'verifying'),
    staticSummary: `pgshift verify ${config.name}: ${[schema && 'schema', data && 'data'].filter(Boolean).join(' + ')}`,
  });
  return { workflowId, result: await handle.result() };
}

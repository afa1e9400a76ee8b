// The migration workflow's public surface: its signals, queries and status
// shape. Workflow code, the client library and activities all use these
// definitions, so a name or a payload type is declared exactly once.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CutoverAnswer, CutoverRequest } from '../lib/cutover-progress';
import type { Config } from '../lib/config';
import type { MigrationState, Throttle } from '../lib/migration-state';

export interface MigrationStatus {
  name: string;
  workflowId: string;
  source: string;
  destination: string;
  mode: Config['mode'];
  verification: Config['verification'];
  state: MigrationState;
}

export const statusQuery = defineQuery<MigrationStatus>('status');
/** The migration's config (no secrets in it), for `pgshift verify ID`. */
export const configQuery = defineQuery<Config>('config');
export const throttleSignal = defineSignal<[Partial<Throttle>]>('throttle');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const abortSignal = defineSignal('abort');
/** Skip one captured DDL entry the apply stopped at (pgshift ddl skip ID ENTRY); recorded in the history. */
export const ddlSkipSignal = defineSignal<[number]>('ddlSkip');
/** Read by running copies and the apply every ~2 s: the live throttle and how many copies share the full-load rates. */
export interface LiveThrottle {
  throttle: Throttle;
  activeCopies: number;
}
export const liveThrottleQuery = defineQuery<LiveThrottle>('liveThrottle');

/**
 * Cut over: `temporal workflow signal --name cutover` works; a refused signal
 * is recorded in status (state.cutoverRefused) since a signal cannot answer.
 */
export const cutoverSignal = defineSignal<[CutoverRequest?]>('cutover');
/** The same as an update that answers: accepted (the steps follow in status) or refused with the reason. */
export const requestCutoverUpdate = defineUpdate<CutoverAnswer, [CutoverRequest]>('requestCutover');
export type { CutoverAnswer, CutoverRequest } from '../lib/cutover-progress';

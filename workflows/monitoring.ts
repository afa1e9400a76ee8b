// The workflow's side of monitoring: telling the worker's metrics which phase
// a migration is in (a sink: no command, nothing in the history).
import { proxySinks } from '@temporalio/workflow';
import type { PgshiftSinks } from '../lib/metrics-sink';

const { pgshift } = proxySinks<PgshiftSinks>();

/** The worker's pgshift_phase series follows the workflow (a sink: no command). */
export function reportPhase(migration: string, phase: string): void {
  pgshift.phase(migration, phase);
}

// The sink workflows report to the worker's metrics with (worker/metrics.ts):
// a sink call is no command and leaves nothing in the history, so it is
// replay-safe without a patch. Pure: imported by workflow code.
import type { Sinks } from '@temporalio/workflow';

export interface PgshiftSinks extends Sinks {
  pgshift: {
    /** The migration entered this phase. */
    phase(migration: string, phase: string): void;
  };
}

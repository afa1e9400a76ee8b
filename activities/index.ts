// Every activity the worker registers. Activities are the data plane: all I/O
// lives here, never in workflow code. Activities that take a config get the
// retry windows (activities/retry.ts: connection vs other failures); every
// activity beats while it runs and stops promptly when cancelled.
import { compatibilityReport } from './compatibility';
import { precheck } from './precheck';
import { abortDestination } from './abort';
import { prepareDestination } from './prepare';
import { reportingCancellation } from './cancellation';
import { observeBeats, withKeepalive } from './heartbeat';
import { withRetryWindows } from './retry';
import { applySchemaStage, buildTableIndexes, planSchema } from './schema';
import { verifySchema } from './verify-schema';
import { copyChunk } from './full-load/chunk';
import { planFullLoad } from './full-load/plan';
import { analyzeTables } from './analyze';
import { syncSequences } from './sequences';
import { listCopiedTables, verifyTableData } from './verify-data';
import { verifyTouchedRows } from './verify-incremental';
import { captureActivities } from './capture';
import { cutoverActivities } from './cutover';
import { sendAlert } from './alerts';
import { activityMeter } from '../worker/metrics';

/** Feed the worker's metrics from an activity's beats and result (activities that take a config: its name labels them). */
function metered<A extends unknown[], R>(activity: string, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const migration = (args[0] as { config?: { name?: unknown } } | undefined)?.config?.name;
    if (typeof migration !== 'string') return fn(...args);
    const meter = activityMeter(activity, migration);
    observeBeats(meter.beat);
    try {
      const r = await fn(...args);
      meter.result(r);
      return r;
    } finally {
      meter.end();
    }
  };
}

export function createActivities() {
  const activities = {
    precheck,
    compatibilityReport,
    prepareDestination: withRetryWindows(prepareDestination),
    abortDestination: withRetryWindows(abortDestination),
    planSchema: withRetryWindows(planSchema),
    applySchemaStage: withRetryWindows(applySchemaStage),
    buildTableIndexes: withRetryWindows(buildTableIndexes),
    verifySchema: withRetryWindows(verifySchema),
    planFullLoad: withRetryWindows(planFullLoad),
    copyChunk: withRetryWindows((input: Parameters<typeof copyChunk>[0]) => copyChunk(input)),
    syncSequences: withRetryWindows(syncSequences),
    analyzeTables: withRetryWindows(analyzeTables),
    listCopiedTables: withRetryWindows(listCopiedTables),
    verifyTableData: withRetryWindows(verifyTableData),
    verifyTouchedRows: withRetryWindows(verifyTouchedRows),
    ...captureActivities(),
    ...cutoverActivities(),
    sendAlert,
  };
  return Object.fromEntries(
    Object.entries(activities).map(([k, fn]) => [k, metered(k, withKeepalive(reportingCancellation(fn as (...a: unknown[]) => Promise<unknown>)))]),
  ) as typeof activities;
}

export type Activities = ReturnType<typeof createActivities>;

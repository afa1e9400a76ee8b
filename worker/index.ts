// The pgshift worker: runs MigrationWorkflow / EvaluationWorkflow (control plane)
// and every activity (data plane) for one task queue. Any number of workers can
// poll the same queue; each picks up activities (chunks, checks) independently.
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { resolveTemporal, type TemporalFlags } from '../lib/io/temporal';
import { traceFirstRequest } from '../lib/io/start-trace';
import { freePort, startMetricsServer, workerSinks } from './metrics';
import { workflowCode } from './workflow-code';

export const DEFAULT_TASK_QUEUE = 'pgshift';

/**
 * Heartbeats reach the server at least every 3 s: an abort (activity
 * cancellation) and a dead worker are then noticed within seconds, not the
 * SDK's default of up to a minute.
 */
export const WORKER_DEFAULTS = { maxHeartbeatThrottleInterval: '3s', defaultHeartbeatThrottleInterval: '3s', sinks: workerSinks() } as const;

export interface WorkerOptions extends TemporalFlags {
  taskQueue?: string;
  /**
   * Pre-built workflow bundle (tests build it once for the suite). Default: the checkout's
   * (dist/bundle/workflows.js, rebuilt when stale), or the compiled workflows outside one.
   */
  workflowBundlePath?: string;
  maxConcurrentActivityTaskExecutions?: number;
  /** Serve Prometheus metrics on this port (GET /metrics): pgshift's series and the Temporal SDK's runtime metrics. */
  metricsPort?: number;
  /** Address the metrics endpoint listens on (default all interfaces). */
  metricsHost?: string;
}

export async function createWorker(opts: WorkerOptions = {}): Promise<{ worker: Worker; connection: NativeConnection }> {
  const { connectionOptions, namespace } = resolveTemporal(opts);
  const code = opts.workflowBundlePath ? { workflowBundle: { codePath: opts.workflowBundlePath } } : await workflowCode();
  traceFirstRequest();
  const connection = await NativeConnection.connect(connectionOptions);
  const taskQueue = opts.taskQueue ?? process.env.PGSHIFT_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  try {
    const worker = await Worker.create({
      connection,
      namespace,
      taskQueue,
      ...code,
      ...WORKER_DEFAULTS,
      activities: createActivities(),
      maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 16,
    });
    return { worker, connection };
  } catch (e) {
    await connection.close();
    throw e;
  }
}

/** `pgshift worker`: run until SIGINT/SIGTERM, then finish gracefully. */
export async function runWorker(opts: WorkerOptions = {}): Promise<void> {
  const metrics = opts.metricsPort !== undefined ? await serveMetrics(opts.metricsPort, opts.metricsHost) : null;
  const { worker, connection } = await createWorker(opts);
  const { taskQueue, namespace } = worker.options;
  console.error(`pgshift worker polling task queue ${taskQueue} in namespace ${namespace}`);
  try {
    await worker.run();
  } finally {
    await connection.close();
    await metrics?.close();
  }
}

/**
 * The metrics endpoint. The Temporal SDK exports its runtime metrics (temporal_*)
 * through its own Prometheus exporter, which must be set up before the first
 * connection: it listens on a free loopback port and /metrics appends what it serves.
 */
async function serveMetrics(port: number, host?: string) {
  let temporalMetricsUrl: string | undefined;
  try {
    const sdkPort = await freePort();
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkPort}` } } } });
    temporalMetricsUrl = `http://127.0.0.1:${sdkPort}/metrics`;
  } catch (e) {
    console.error(`pgshift worker: the Temporal SDK's runtime metrics are not served (${(e as Error).message})`);
  }
  const server = await startMetricsServer(port, { host, temporalMetricsUrl });
  console.error(`pgshift worker metrics on http://${host ?? '0.0.0.0'}:${server.port}/metrics`);
  return server;
}

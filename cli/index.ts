// The `pgshift` command. Exit codes: 0 success / compatible, 1 incompatible or
// failed, 2 bad input (config, invocation). Errors are one clear line each,
// never a stack trace.
import { Command, Option } from 'commander';
import type { Config } from '../lib/config';
import type { TemporalFlags } from '../lib/io/temporal';
import { renderReportMarkdown } from '../lib/report';
import { renderStatusMarkdown } from '../lib/migration-state';
import { renderCutover } from '../lib/cutover-progress';
import { liveRates } from '../lib/live-status';
import { clipLine, terminalRenderer } from '../lib/terminal';

// Modules load on first use, so a command loads only what it runs: `--help` loads neither
// the Temporal client (grpc-js, protobufjs: most of a start's time) nor the config schema (zod).
/* eslint-disable @typescript-eslint/no-require-imports */
type ClientLib = typeof import('../client/operations');
type MigrationStatus = Awaited<ReturnType<ClientLib['getStatus']>>;
type TemporalLib = typeof import('../lib/io/temporal');
type ConfigLib = typeof import('../lib/io/config-load');
let clientLib: ClientLib | undefined;
let temporalLib: TemporalLib | undefined;
let configLib: ConfigLib | undefined;
const clientApi = (): ClientLib => (clientLib ??= require('../client/operations') as ClientLib);
const temporal = (): TemporalLib => (temporalLib ??= require('../lib/io/temporal') as TemporalLib);
const configLoad = (): ConfigLib => (configLib ??= require('../lib/io/config-load') as ConfigLib);
/**
 * `release` (pg) and `worker` (the activities, the Temporal worker) load only for their command.
 * Both are bundled too (bin/bundle.js); of @temporalio/worker, the native bridge, the workflow
 * threads' file and webpack load from node_modules.
 */
const releaseLib = () => require('../activities/release') as typeof import('../activities/release');
const workerLib = () => require('../worker') as typeof import('../worker');

/** Load every lazily loaded module (bin/bundle.js does before it writes the code cache, so the cache holds them). */
export function loadLazyModules(): void {
  clientApi();
  temporal();
  configLoad();
  // Not the worker: it loads the native bridge (not bundled) and starts the SDK's runtime.
  releaseLib();
}

/* eslint-enable @typescript-eslint/no-require-imports */

export const EXIT = { ok: 0, failed: 1, badInput: 2 } as const;

class UsageError extends Error {}

function withTemporalOptions(cmd: Command): Command {
  return cmd
    .option('--address <host:port>', 'Temporal frontend address (env TEMPORAL_ADDRESS, default localhost:7233)')
    .option('--namespace <ns>', 'Temporal namespace (env TEMPORAL_NAMESPACE, default "default")')
    .option('--profile <name>', 'profile of the Temporal CLI config file (env TEMPORAL_PROFILE)')
    .addOption(new Option('--api-key <key>', 'Temporal Cloud API key (prefer env TEMPORAL_API_KEY)').hideHelp())
    .option('--tls', 'use TLS to reach Temporal')
    .option('--tls-cert-path <file>', 'client certificate for mTLS')
    .option('--tls-key-path <file>', 'client key for mTLS')
    .option('--tls-ca-path <file>', 'CA certificate of the Temporal server')
    .option('--tls-server-name <name>', 'override the TLS server name');
}

const temporalFlags = (o: Record<string, unknown>): TemporalFlags => ({
  address: o.address as string | undefined,
  namespace: o.namespace as string | undefined,
  profile: o.profile as string | undefined,
  apiKey: o.apiKey as string | undefined,
  tls: o.tls as boolean | undefined,
  tlsCertPath: o.tlsCertPath as string | undefined,
  tlsKeyPath: o.tlsKeyPath as string | undefined,
  tlsCaPath: o.tlsCaPath as string | undefined,
  tlsServerName: o.tlsServerName as string | undefined,
});

function parseLimit(v: string): number | null {
  if (v === 'none' || v === '0') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`throttle: ${JSON.stringify(v)} is not a number, expected a positive number, 0 or none`);
  return n;
}

type TemporalClient = Awaited<ReturnType<TemporalLib['connectClient']>>;

async function withClient(o: Record<string, unknown>, fn: (c: TemporalClient, lib: ClientLib) => Promise<void>): Promise<void> {
  const lib = clientApi();
  const c = await temporal().connectClient(temporalFlags(o));
  try {
    await fn(c, lib);
  } finally {
    await c.connection.close();
  }
}

/**
 * Search attributes registered, then `fn` on the queue; beside it (not a round trip before
 * it), a hint as soon as it is known that nobody polls the queue yet.
 */
async function onQueue<T>(client: TemporalClient, taskQueue: string, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  await temporal().ensureSearchAttributes(client);
  const hint = clientLib!.hasWorkers(client, taskQueue).then((polled) => {
    if (!polled) console.error(`note: no worker is polling task queue ${taskQueue} yet; start one with: pgshift worker --task-queue ${taskQueue}`);
  });
  try {
    return await fn(taskQueue);
  } finally {
    await hint.catch(() => undefined);
  }
}

/** How a report prints: JSON (--json), markdown (--markdown, or stdout is not a terminal: scripts keep what they read), else for the terminal. */
type Output = 'json' | 'markdown' | 'terminal';
function outputOf(o: { json?: boolean; markdown?: boolean }): Output {
  if (o.json) return 'json';
  return o.markdown || !process.stdout.isTTY ? 'markdown' : 'terminal';
}

const forTerminal = (markdown: string) => terminalRenderer({ color: !process.env.NO_COLOR && process.stdout.hasColors?.() !== false })(markdown);

/** `--watch` on a terminal: each refresh overwrites the previous one instead of scrolling. */
function inPlace() {
  let drawn = 0;
  return (text: string) => {
    const lines = text.split('\n').slice(0, Math.max(1, (process.stdout.rows || 50) - 1));
    const width = process.stdout.columns || 120;
    process.stdout.write(`${drawn ? `\x1b[${drawn}F` : ''}${lines.map((l) => `${clipLine(l, width)}\x1b[K`).join('\n')}\n\x1b[J`);
    drawn = lines.length;
  };
}

function readConfig(file: string | undefined): Config {
  if (!file) throw new UsageError('--config: missing, expected the path of a JSON or YAML config file');
  return configLoad().loadConfigFile(file);
}

export function buildProgram(): Command {
  const program = new Command('pgshift')
    .description('Online PostgreSQL → PostgreSQL migration as a durable Temporal workflow')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  withTemporalOptions(
    program
      .command('evaluate')
      .description('compatibility report and precheck of a config (read-only on the source)')
      .requiredOption('--config <file>', 'migration config (JSON or YAML)')
      .option('--json', 'print the report as JSON')
      .option('--markdown', 'print the report as markdown (the default when stdout is not a terminal)')
      .option('--task-queue <name>', 'task queue of the workers (default: config taskQueue)'),
  ).action(async (o) => {
    const config = readConfig(o.config);
    await withClient(o, async (client, api) => {
      const { workflowId, report } = await onQueue(client, o.taskQueue ?? config.taskQueue, (taskQueue) => api.evaluate(client, config, { taskQueue }));
      const out = outputOf(o);
      if (out === 'json') console.log(JSON.stringify({ workflowId, ...report }, null, 2));
      else {
        const md = renderReportMarkdown(report) + `\n\nworkflow: ${workflowId}`;
        console.log(out === 'markdown' ? md : forTerminal(md));
      }
      process.exitCode = report.verdict === 'compatible' ? EXIT.ok : report.verdict === 'bad-input' ? EXIT.badInput : EXIT.failed;
    });
  });

  withTemporalOptions(
    program
      .command('start')
      .description('start a migration (workflow id pgshift-<name>)')
      .requiredOption('--config <file>', 'migration config (JSON or YAML)')
      .option('--id <workflowId>', 'workflow id (default pgshift-<name>)')
      .option('--task-queue <name>', 'task queue of the workers (default: config taskQueue)'),
  ).action(async (o) => {
    const config = readConfig(o.config);
    await withClient(o, async (client, api) => {
      const id = await onQueue(client, o.taskQueue ?? config.taskQueue, (taskQueue) => api.startMigration(client, config, { taskQueue, workflowId: o.id }));
      console.log(`started ${id}; follow it with: pgshift status ${config.name} --watch`);
    });
  });

  withTemporalOptions(
    program
      .command('status <id>')
      .description('phase, progress, errors of a migration (name or workflow id)')
      .option('--json', 'print JSON')
      .option('--markdown', 'print markdown (the default when stdout is not a terminal)')
      .option('--watch', 'refresh every 2 s until the migration ends (on a terminal: in place, with the rates of the last 2 s)'),
  ).action(async (id: string, o) => {
    const out = outputOf(o);
    const draw = out === 'terminal' && o.watch ? inPlace() : (text: string) => console.log(text);
    await withClient(o, async (client, api) => {
      let prev: { at: number; state: MigrationStatus['state'] } | null = null;
      for (;;) {
        const s = await api.getStatus(client, id);
        const at = Date.now();
        if (out === 'json') console.log(JSON.stringify(s, null, 2));
        else {
          const md = `${s.workflowId}: ${s.source} → ${s.destination}\n\n${renderStatusMarkdown(s.name, s, s.state, at, prev && liveRates(prev, { at, state: s.state }))}`;
          draw(out === 'markdown' ? md : forTerminal(md));
        }
        prev = { at, state: s.state };
        const over = ['done', 'aborted', 'failed'].includes(s.state.phase);
        if (!o.watch || over) {
          if (s.state.phase === 'failed') process.exitCode = EXIT.failed;
          return;
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    });
  });

  withTemporalOptions(
    program
      .command('verify <id>')
      .description('compare source and destination now: schema and/or every row (exit 0 consistent, 1 differences)')
      .option('--schema', 'verify the schema only')
      .option('--data', 'verify the data only')
      .option('--json', 'print JSON'),
  ).action(async (id: string, o) => {
    await withClient(o, async (client, api) => {
      const only = o.schema || o.data;
      const { workflowId, result } = await api.verify(client, id, only ? { schema: !!o.schema, data: !!o.data } : {});
      if (o.json) console.log(JSON.stringify({ workflowId, ...result }, null, 2));
      else {
        if (result.schema) {
          console.log(`schema: ${result.schema.differences.length ? `${result.schema.differences.length} differences` : 'no difference'}`);
          for (const d of result.schema.differences) console.log(`  ${d.kind} ${d.object}: ${d.difference}`);
        }
        const shown = Object.values(result.data?.tables ?? {});
        for (const t of shown) console.log(`${t.consistent ? 'ok  ' : 'DIFF'} ${t.summary}`);
        if (result.data && result.data.compared > shown.length) {
          const hidden = result.data.inconsistent - shown.filter((t) => !t.consistent).length;
          console.log(`…    ${result.data.compared - shown.length} more tables compared${hidden ? `, ${hidden} of them inconsistent` : ', consistent'}`);
        }
        console.log(`\n${result.consistent ? 'consistent' : 'DIFFERENCES FOUND'} (workflow ${workflowId})`);
      }
      process.exitCode = result.consistent ? EXIT.ok : EXIT.failed;
    });
  });

  for (const [name, what] of [
    ['pause', 'pause a migration after the running step'],
    ['resume', 'resume a paused migration'],
    ['abort', 'abort a migration: stop promptly, release the source (slot, publication, fence), fence the destination'],
  ] as const) {
    withTemporalOptions(program.command(`${name} <id>`).description(what)).action(async (id: string, o) => {
      await withClient(o, async (client, api) => {
        await api[name](client, id);
        console.log(`${name} sent to ${id}`);
      });
    });
  }

  const ddl = program.command('ddl').description('captured DDL of a running migration');
  withTemporalOptions(
    ddl.command('skip <id> <entry>').description('skip one captured DDL entry the apply stopped at (see status); recorded in the workflow history'),
  ).action(async (id: string, entry: string, o) => {
    await withClient(o, async (client, api) => {
      await api.skipDdl(client, id, Number(entry));
      console.log(`ddl skip ${entry} sent to ${id}`);
    });
  });

  withTemporalOptions(
    program
      .command('cutover <id>')
      .description('cut over to the destination: fence, drain, sequences, verification, release (exit 0 done or accepted, 1 refused or failed)')
      .addOption(new Option('--fence <fence>', 'write fence on the source (default: config cutover.fence)').choices(['none', 'read-only']))
      .addOption(new Option('--verify <what>', 'final data verification (default: config cutover.verify)').choices(['changed', 'full', 'none']))
      .option('--wait', 'print the steps as they happen until the cutover ends'),
  ).action(async (id: string, o) => {
    await withClient(o, async (client, api) => {
      const answer = await api.cutover(client, id, { ...(o.fence ? { fence: o.fence } : {}), ...(o.verify ? { verify: o.verify } : {}) });
      if (!answer.accepted) {
        console.error(`cutover refused: ${answer.reason}`);
        process.exitCode = EXIT.failed;
        return;
      }
      console.log(`cutover accepted (fence ${answer.fence}, verify ${answer.verify})`);
      if (!o.wait) return;
      const seen = new Map<string, string>();
      for (;;) {
        const s = await api.getStatus(client, id);
        const c = s.state.cutover;
        for (const step of c?.steps ?? []) {
          const line = `${step.status}${step.detail ? `: ${step.detail}` : ''}`;
          if (step.status !== 'pending' && seen.get(step.name) !== line) {
            seen.set(step.name, line);
            console.log(`  ${step.name.padEnd(19)} ${line}`);
          }
        }
        if (c?.failure || s.state.phase === 'failed' || s.state.phase === 'aborted') {
          console.error(`cutover failed: ${c?.failure ?? s.state.errors.at(-1)?.message ?? s.state.phase}`);
          process.exitCode = EXIT.failed;
          return;
        }
        if (c?.finishedAt) {
          console.log('\n' + renderCutover(c).join('\n'));
          return;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    });
  });

  program
    .command('release')
    .description('remove what a migration left on the source (slot, publication, fence, control schema) when its workflow could not; safe to run twice')
    .option('--config <file>', 'the migration config (JSON or YAML)')
    .option('--destination', "also remove the migration's control rows on the destination (its fencing row: the name can be used again)")
    .action(async (o) => {
      const config = readConfig(o.config);
      // Loaded only here: the other commands do not talk to the databases.
      const { releaseMigration } = releaseLib();
      const r = await releaseMigration(config, { destination: !!o.destination });
      if (!r.removed.length) console.log(`nothing left to release for migration ${config.name}`);
      for (const x of r.removed) console.log(`removed ${x}`);
    });

  withTemporalOptions(
    program
      .command('throttle <id>')
      .description('change rate limits while the migration runs (0 or "none" removes a limit)')
      .option('--full-rows-per-sec <n>', 'full-load rows per second', parseLimit)
      .option('--full-mb-per-sec <n>', 'full-load MB per second', parseLimit)
      .option('--incremental-rows-per-sec <n>', 'change-apply rows per second', parseLimit),
  ).action(async (id: string, o) => {
    const t = {
      ...(o.fullRowsPerSec !== undefined ? { fullRowsPerSecond: o.fullRowsPerSec } : {}),
      ...(o.fullMbPerSec !== undefined ? { fullMbPerSecond: o.fullMbPerSec } : {}),
      ...(o.incrementalRowsPerSec !== undefined ? { incrementalRowsPerSecond: o.incrementalRowsPerSec } : {}),
    };
    if (!Object.keys(t).length) throw new UsageError('throttle: give at least one of --full-rows-per-sec, --full-mb-per-sec, --incremental-rows-per-sec');
    await withClient(o, async (client, api) => {
      await api.throttle(client, id, t);
      console.log(`throttle ${JSON.stringify(t)} sent to ${id}`);
    });
  });

  withTemporalOptions(
    program
      .command('worker')
      .description('run a pgshift worker (workflows and activities) until SIGINT/SIGTERM')
      .option('--task-queue <name>', 'task queue to poll (env PGSHIFT_TASK_QUEUE, default pgshift)')
      .option('--max-activities <n>', 'activities run at the same time', (v) => parseInt(v, 10))
      .option('--metrics-port <n>', 'serve Prometheus metrics on this port (GET /metrics; see README "Monitoring")', (v) => parseInt(v, 10))
      .option('--metrics-host <address>', 'address the metrics endpoint listens on', '0.0.0.0'),
  ).action(async (o) => {
    const { runWorker } = workerLib();
    if (o.metricsPort !== undefined && !(Number.isInteger(o.metricsPort) && o.metricsPort >= 0 && o.metricsPort < 65536)) {
      throw new UsageError('worker: --metrics-port expects a port number');
    }
    await runWorker({
      ...temporalFlags(o),
      taskQueue: o.taskQueue,
      maxConcurrentActivityTaskExecutions: o.maxActivities,
      metricsPort: o.metricsPort,
      metricsHost: o.metricsHost,
    });
  });

  withTemporalOptions(program.command('list').description('list pgshift migrations and evaluations').option('--json', 'print JSON')).action(async (o) => {
    await withClient(o, async (client, api) => {
      const rows = await api.list(client);
      if (o.json) {
        console.log(
          JSON.stringify(
            rows.map((r) => ({ workflowId: r.workflowId, type: r.type, status: r.status.name, startTime: r.startTime })),
            null,
            2,
          ),
        );
      } else {
        for (const r of rows) console.log(`${r.workflowId}\t${r.type}\t${r.status.name}\t${r.startTime.toISOString()}`);
      }
    });
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code?.startsWith('commander.')) {
      // help and version are not errors; commander already printed usage problems
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT.ok : EXIT.badInput;
    }
    if (configLib && e instanceof configLib.ConfigError) {
      for (const p of e.problems) console.error(p);
      return EXIT.badInput;
    }
    if (e instanceof UsageError) {
      console.error(e.message);
      return EXIT.badInput;
    }
    console.error(`pgshift: ${err.message ?? String(e)}`);
    return EXIT.failed;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

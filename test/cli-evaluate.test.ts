// `pgshift evaluate` end to end: real CLI process, real Temporal server, real
// worker, real PostgreSQL 15 → 18 clusters.
import { describe, expect, it } from 'vitest';
import { freePort } from '../dev/ports';
import { configFile, runCli } from './harness/cli';
import { historyText, makePair, temporalClient, uid, withWorker } from './harness/env';
import { recordHistories } from './harness/histories';

describe('pgshift evaluate', () => {
  it('exits 2 with one line per problem on a bad config, without a stack trace', async () => {
    const file = configFile({ name: 'x', source: { host: 'h', database: 'd', user: 'u', port: 'five' }, retry: { connectionMinutes: 5 }, extra: true });
    const r = await runCli(['evaluate', '--config', file]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toContain('source.port: got the string "five", expected number');
    expect(lines).toContain('destination: missing, expected object');
    expect(lines).toContain('retry.connectionMinutes: got number 5, expected a whole number of minutes between 10 and 1440');
    expect(lines.some((l) => l.startsWith('extra: unknown key'))).toBe(true);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits 2 when the config file is missing or not YAML', async () => {
    const r = await runCli(['evaluate', '--config', '/nonexistent/pgshift.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^\/nonexistent\/pgshift.yaml: cannot read the config file \(ENOENT\)/);
    const bad = configFile('name: [unclosed');
    const r2 = await runCli(['evaluate', '--config', bad]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/not valid YAML\/JSON/);
  });

  it('evaluates a clean source (exit 0, JSON report) and keeps every password out of the history', async () => {
    const pair = await makePair();
    await pair.source.sql('CREATE TABLE public.items (id int PRIMARY KEY, name text)');
    const taskQueue = `tq-${uid()}`;
    const file = configFile(pair.raw({ taskQueue }), 'json');
    const r = await withWorker(taskQueue, () => runCli(['evaluate', '--config', file, '--json']));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const report = JSON.parse(r.stdout);
    const failing = report.precheck.filter((p: { verdict: string }) => p.verdict === 'fail');
    expect(failing, JSON.stringify(failing)).toEqual([]);
    expect(r.code).toBe(0);
    expect(report.verdict).toBe('compatible');

    const client = await temporalClient();
    const history = historyText(await client.workflow.getHandle(report.workflowId).fetchHistory());
    expect(history.length).toBeGreaterThan(1000);
    expect(history).toContain(pair.source.passwordEnv); // the reference is there…
    for (const side of [pair.source, pair.destination]) {
      const pw = process.env[side.passwordEnv]!;
      expect(history).not.toContain(pw); // …the secret is not
      expect(history).not.toContain(Buffer.from(pw).toString('base64'));
    }
    const desc = await client.workflow.getHandle(report.workflowId).describe();
    expect(desc.typedSearchAttributes.getAll().map((p) => p.key.name)).toEqual(expect.arrayContaining(['PgshiftPhase', 'PgshiftSource', 'PgshiftDestination']));
    await recordHistories(client, report.workflowId, 'evaluation-compatible');
    await client.connection.close();
  });

  it('exits 2 naming the field when a secret env var is missing or the host is unreachable', async () => {
    const pair = await makePair();
    const taskQueue = `tq-${uid()}`;
    const closedPort = await freePort();
    const missing = configFile(pair.raw({ taskQueue, source: { ...pair.raw().source, passwordEnv: 'PGSHIFT_TEST_UNSET_PW' } }));
    const unreachable = configFile(pair.raw({ taskQueue, destination: { ...pair.raw().destination, port: closedPort } }));
    const [a, b] = await withWorker(taskQueue, () => Promise.all([runCli(['evaluate', '--config', missing]), runCli(['evaluate', '--config', unreachable])]));
    expect(a.code, a.stdout + a.stderr).toBe(2);
    expect(a.stdout).toContain(
      "source.passwordEnv: environment variable PGSHIFT_TEST_UNSET_PW is not set in the worker's environment, expected it to hold the source password",
    );
    expect(b.code, b.stdout + b.stderr).toBe(2);
    expect(b.stdout).toContain(`destination.host/destination.port: nothing accepts connections at 127.0.0.1:${closedPort} (ECONNREFUSED)`);
  });
});

// Replay safety: migrations run for weeks while the workflow code changes
// under them. Every recorded history (test/fixtures/histories/, recorded from
// real runs of the suite's scenarios: a full migration, a continue-as-new
// chain, aborts, failures, evaluations) must replay against the current
// workflow code without nondeterminism. See README "Contributing".
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { workerSinks } from '../worker/metrics';
import { historyFromJSON, HISTORIES_DIR } from './harness/histories';

const fixtures = readdirSync(HISTORIES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();
const load = (file: string) => historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')));
const workflowType = (file: string) => load(file).events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

describe('replay of recorded histories', () => {
  it('covers both workflows and the runs that matter', () => {
    const scenarios = new Set(fixtures.map((f) => f.split('.')[0]));
    for (const s of [
      'evaluation-compatible',
      'migration-full-only',
      'migration-continue-as-new',
      'migration-aborted-mid-copy',
      'migration-precheck-failed',
      'migration-schema-failed',
      'migration-ddl-skip-cutover',
    ]) {
      expect(scenarios, s).toContain(s);
    }
    expect(new Set(fixtures.map(workflowType))).toEqual(new Set(['EvaluationWorkflow', 'MigrationWorkflow', 'VerificationWorkflow']));
  });

  it('replays every history against the current workflow code', async () => {
    const results = Worker.runReplayHistories(
      { workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: 'pgshift fixtures', sinks: workerSinks() },
      fixtures.map((f) => ({ workflowId: f, history: load(f) })),
    );
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of results) {
      replayed++;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.name}: ${r.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(fixtures.length);
  });

  it('fails on a workflow changed without a patch', async () => {
    const migration = fixtures.find((f) => f.startsWith('migration-full-only.'))!;
    const replay = Worker.runReplayHistory(
      { workflowsPath: path.join(__dirname, 'fixtures', 'workflows', 'changed-migration.ts'), replayName: 'changed' },
      load(migration),
    );
    await expect(replay).rejects.toMatchObject({ name: 'DeterminismViolationError' });
  });
});

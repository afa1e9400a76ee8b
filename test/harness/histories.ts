// Recorded workflow histories for the replay test (test/replay.test.ts).
// With PGSHIFT_RECORD_HISTORIES=1 (`npm run record-histories`), the tests that
// call recordHistories save the history of every run of a workflow — the
// chain of continue-as-new runs included — as test/fixtures/histories/
// <scenario>.<commit>[.run<N>].json. An existing fixture is never overwritten:
// histories recorded with older code stay, so that code's runs keep replaying.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

type History = proto.temporal.api.history.v1.IHistory;

// Fixtures are in the proto JSON form of `temporal workflow show --output json`.
// The SDK's historyFromJSON / historyToJSON cannot be used with this
// project's dependency tree: @temporalio/common and @temporalio/proto each get
// their own copy of protobufjs 8 (the top-level slot holds grpc's protobufjs
// 7), and protojson refuses a message type of the other copy. The converter
// of @temporalio/proto's own copy matches its types.
const requireFromProto = createRequire(require.resolve('@temporalio/proto'));
const protojson = requireFromProto('protobufjs/ext/protojson') as {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }): History | null;
};
// The module object itself (not an ES namespace copy): its root is what protobufjs looks types up in.
const protoModule = requireFromProto('@temporalio/proto') as typeof proto;
const historyType = (patchProtobufRoot(protoModule) as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

/** A history as proto JSON. */
export function historyToJSON(history: History): unknown {
  return protojson.toJson(historyType, protoModule.temporal.api.history.v1.History.fromObject(history));
}

/** A history from proto JSON; event types may also be spelt as older CLIs did (WorkflowExecutionStarted). */
export function historyFromJSON(json: { events: Record<string, unknown>[] }): History {
  const constantCase = (s: string) => s.replace(/[^\b][A-Z]/g, (m) => `${m[0]}_${m[1]}`).toUpperCase();
  const events = json.events.map((e) => {
    const t = e.eventType as string | undefined;
    return t && !t.startsWith('EVENT_TYPE') ? { ...e, eventType: `EVENT_TYPE_${constantCase(t)}` } : e;
  });
  const history = protojson.fromJson(historyType, { ...json, events }, { ignoreUnknownFields: true });
  if (!history) throw new TypeError('not a workflow history');
  return history;
}

export const HISTORIES_DIR = path.join(__dirname, '..', 'fixtures', 'histories');

export const recording = () => process.env.PGSHIFT_RECORD_HISTORIES === '1';

/** The commit the workflow code was recorded with (its short hash). */
function commit(): string {
  return execFileSync('git', ['rev-parse', '--short=10', 'HEAD'], { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8' }).trim();
}

/** Save every run of `workflowId` (oldest first) as fixtures of `scenario`; a no-op unless recording. */
export async function recordHistories(client: Client, workflowId: string, scenario: string): Promise<void> {
  if (!recording()) return;
  // Walk the continue-as-new chain back from the latest run: each run's first event names the one before.
  const runs: unknown[] = [];
  let runId: string | undefined;
  for (;;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.unshift(historyToJSON(history));
    runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
    if (!runId) break;
  }
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const at = commit();
  for (const [i, json] of runs.entries()) {
    const file = path.join(HISTORIES_DIR, `${scenario}.${at}${runs.length > 1 ? `.run${i + 1}` : ''}.json`);
    if (existsSync(file)) continue;
    writeFileSync(file, JSON.stringify(json, null, 1) + '\n');
  }
}

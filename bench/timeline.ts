// Where a pgshift run's wall time went, read from its workflow history: the
// span of each activity type, and the critical path of the full load — the
// schema before the first copy, the copies, the tail where one copy lane ran
// alone (lane imbalance), the index builds left after the last copy, and the
// phases after the load. Event times are the Temporal server's.
import type { WorkflowHandle } from '@temporalio/client';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

export interface ActivitySpan {
  type: string;
  start: number;
  end: number;
  /** The activity's summary (which table / chunk), when it has one. */
  summary: string;
}

export interface RunProfile {
  workflowSeconds: number;
  /** Seconds from the workflow's start, in completion order. */
  activities: ActivitySpan[];
  /** Workflow start → first copy scheduled (precheck, schema, plan). */
  beforeCopy: number;
  /** First copy scheduled → last copy closed. */
  copy: number;
  /** Last copy closed → the other lane's last copy closed: one lane idle. */
  laneImbalance: number;
  /** Time inside the copy span with fewer than two copies running (round trips between activities, imbalance included). */
  copyIdleLaneSeconds: number;
  /** Last copy closed → last index build closed. */
  indexTail: number;
  /** Last copy or index build closed → workflow closed (sequences, ANALYZE, verification). */
  after: number;
}

const ms = (t: unknown) => {
  const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number } | null | undefined;
  const sec = typeof ts?.seconds === 'number' ? ts.seconds : (ts?.seconds?.toNumber() ?? 0);
  return sec * 1000 + (ts?.nanos ?? 0) / 1e6;
};

function summaryOf(e: HistoryEvent): string {
  const data = e.userMetadata?.summary?.data;
  return data ? JSON.parse(Buffer.from(data).toString('utf8')) : '';
}

export function analyseHistory(history: History): RunProfile {
  const events = history.events ?? [];
  const t0 = ms(events[0]?.eventTime);
  const tEnd = ms(events[events.length - 1]?.eventTime);
  const scheduled = new Map<string, { type: string; at: number; summary: string }>();
  const activities: ActivitySpan[] = [];
  for (const e of events) {
    const at = (ms(e.eventTime) - t0) / 1000;
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '?', at, summary: summaryOf(e) });
    const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskCanceledEventAttributes;
    if (closed) {
      const from = scheduled.get(String(closed.scheduledEventId));
      if (from) activities.push({ type: from.type, start: from.at, end: at, summary: from.summary });
    }
  }
  const of = (type: string) => activities.filter((a) => a.type === type);
  const copies = of('copyChunk');
  const builds = of('buildTableIndexes');
  const workflowSeconds = (tEnd - t0) / 1000;
  if (!copies.length)
    return { workflowSeconds, activities, beforeCopy: workflowSeconds, copy: 0, laneImbalance: 0, copyIdleLaneSeconds: 0, indexTail: 0, after: 0 };
  const firstCopy = Math.min(...copies.map((c) => c.start));
  const ends = copies.map((c) => c.end).sort((a, b) => a - b);
  const lastCopy = ends[ends.length - 1];
  const otherLane = ends.length > 1 ? ends[ends.length - 2] : firstCopy;
  // Seconds of the copy span with fewer than 2 copies running, from the copies' start/end points.
  const points = copies.flatMap((c) => [
    { at: c.start, d: 1 },
    { at: c.end, d: -1 },
  ]);
  points.sort((a, b) => a.at - b.at || a.d - b.d);
  let running = 0;
  let prev = firstCopy;
  let idle = 0;
  for (const p of points) {
    if (running < 2) idle += ((2 - running) / 2) * (p.at - prev);
    running += p.d;
    prev = p.at;
  }
  const lastBuild = builds.length ? Math.max(...builds.map((b) => b.end)) : lastCopy;
  return {
    workflowSeconds,
    activities,
    beforeCopy: firstCopy,
    copy: lastCopy - firstCopy,
    laneImbalance: lastCopy - otherLane,
    copyIdleLaneSeconds: idle * 2,
    indexTail: Math.max(0, lastBuild - lastCopy),
    after: workflowSeconds - Math.max(lastBuild, lastCopy),
  };
}

export function renderTimeline(p: RunProfile, detailed: boolean): string {
  const spans = new Map<string, [number, number]>();
  for (const a of p.activities) {
    const s = spans.get(a.type);
    spans.set(a.type, s ? [Math.min(s[0], a.start), Math.max(s[1], a.end)] : [a.start, a.end]);
  }
  const lines = [
    `  critical path: workflow ${p.workflowSeconds.toFixed(1)} s = before the first copy ${p.beforeCopy.toFixed(1)} s + copies ${p.copy.toFixed(1)} s ` +
      `(one lane alone at the end ${p.laneImbalance.toFixed(1)} s; lane-seconds with no copy running ${p.copyIdleLaneSeconds.toFixed(1)} s) ` +
      `+ index builds after the last copy ${p.indexTail.toFixed(1)} s + after the load ${p.after.toFixed(1)} s`,
    `  activity spans: ${[...spans].map(([n, [a, b]]) => `${n} ${(b - a).toFixed(1)} s`).join(', ')}`,
  ];
  if (detailed)
    for (const a of [...p.activities].sort((x, y) => x.start - y.start))
      lines.push(`    ${a.start.toFixed(2)} → ${a.end.toFixed(2)} ${a.type}${a.summary ? `: ${a.summary}` : ''}`);
  return lines.join('\n');
}

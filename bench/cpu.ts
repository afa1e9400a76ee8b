// CPU seconds spent by each party of a benchmark run, read from /proc (Linux):
// each cluster (postmaster, its live children, and the children it has reaped —
// a backend per connection, so most exit before the run ends), the Temporal dev
// server, this process (the in-process worker and client) and the processes this
// one has waited for (the CLI, psql, pg_dump, pgcopydb). Two snapshots' difference
// says where a run's time went on a machine whose cores they all share.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const TICK = 100; // USER_HZ: /proc reports clock ticks of 1/100 s on Linux

export interface CpuSnapshot {
  source: number;
  destination: number;
  temporal: number;
  /** This process: the bench's in-process worker and Temporal client. */
  worker: number;
  /** Processes this one has waited for: CLI, psql, pg_dump/pg_restore, pgcopydb. */
  children: number;
}

interface ProcStat {
  ppid: number;
  own: number;
  reaped: number;
}

function stat(pid: number | string): ProcStat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), own: (Number(f[11]) + Number(f[12])) / TICK, reaped: (Number(f[13]) + Number(f[14])) / TICK };
  } catch {
    return null; // exited meanwhile
  }
}

/** A process tree's CPU: its own, its reaped children's, and its live descendants' (theirs and their reaped ones'). */
function treeSeconds(root: number, all: Map<number, ProcStat>): number {
  const self = all.get(root);
  if (!self) return 0;
  let total = self.own + self.reaped;
  for (const [pid, p] of all) if (p.ppid === root && pid !== root) total += treeSeconds(pid, all);
  return total;
}

function allProcesses(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(name);
    if (s) out.set(Number(name), s);
  }
  return out;
}

export function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** CPU seconds of a cluster's postmaster and every server process under it (exited ones included: reaped into cutime). */
export function clusterCpuSeconds(dataDir: string): number {
  return treeSeconds(postmasterPid(dataDir), allProcesses());
}

export function cpuSnapshot(pids: { source: number; destination: number; temporal: number }): CpuSnapshot {
  const all = allProcesses();
  const self = stat(process.pid)!;
  // Live children of this process (a CLI still running) count as children too.
  let liveChildren = 0;
  for (const [pid, p] of all) if (p.ppid === process.pid) liveChildren += treeSeconds(pid, all);
  return {
    source: treeSeconds(pids.source, all),
    destination: treeSeconds(pids.destination, all),
    temporal: treeSeconds(pids.temporal, all),
    worker: self.own,
    children: self.reaped + liveChildren,
  };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  return {
    source: b.source - a.source,
    destination: b.destination - a.destination,
    temporal: b.temporal - a.temporal,
    worker: b.worker - a.worker,
    children: b.children - a.children,
  };
}

export function renderCpu(c: CpuSnapshot, seconds: number): string {
  const part = (label: string, s: number) => `${label} ${s.toFixed(1)} s (${((s / seconds) * 100).toFixed(0)} %)`;
  return [
    part('source', c.source),
    part('destination', c.destination),
    part('worker', c.worker),
    part('temporal', c.temporal),
    part('CLI/tool processes', c.children),
  ].join(', ');
}

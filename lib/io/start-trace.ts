// PGSHIFT_TRACE_START=1 (bin/pgshift's trace, read by bench/cli-start.ts and the bundle tests):
// how a start went, on stderr. Off, it costs one environment lookup.

export function startTrace(msg: string): void {
  if (process.env.PGSHIFT_TRACE_START) process.stderr.write(`pgshift-trace: ${msg}\n`);
}

let traced = false;

/**
 * Just before the process's first network request (Temporal or PostgreSQL): when it leaves, and
 * the CPU time used until then, the figure a loaded machine distorts least. Once per process.
 */
export function traceFirstRequest(): void {
  if (traced || !process.env.PGSHIFT_TRACE_START) return;
  traced = true;
  const cpu = process.cpuUsage();
  startTrace(`connect at ${(performance.timeOrigin + performance.now()).toFixed(1)} cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`);
}

// applyChanges in a child process, so a test can SIGKILL it mid-stream as a
// worker dies in production, or measure its memory alone. Input (config,
// runToken, optionally stopAtLsn) as JSON in PGSHIFT_APPLY_INPUT; passwords
// come from the inherited environment. The result line carries the process's
// peak RSS (VmHWM, kB) as `peakRssKb`.
import { readFileSync } from 'node:fs';
import { applyChanges } from '../../activities/capture/apply';

const peakRssKb = () => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);

const input = JSON.parse(process.env.PGSHIFT_APPLY_INPUT ?? '{}');
applyChanges(input).then(
  (r) => {
    process.stdout.write(JSON.stringify({ ...r, peakRssKb: peakRssKb() }) + '\n');
    process.exit(0);
  },
  (e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);

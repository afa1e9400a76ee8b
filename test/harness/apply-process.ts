// applyChanges in a child process, so a test can SIGKILL it mid-stream as a
// worker dies in production. Input (config, runToken) as JSON in
// PGSHIFT_APPLY_INPUT; passwords come from the inherited environment.
import { applyChanges } from '../../activities/capture/apply';

const input = JSON.parse(process.env.PGSHIFT_APPLY_INPUT ?? '{}');
applyChanges(input).then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  },
  (e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);

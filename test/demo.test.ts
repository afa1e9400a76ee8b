// The README's first command stays true: `npm run demo` (after set-up) runs the
// whole online demo on embedded defaults — its own Temporal dev server and
// clusters, a sample application writing throughout, a cutover with the fence —
// and ends with a clean verification, leaving nothing running.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

function runDemo(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['dev/demo.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

describe('npm run demo', () => {
  it('migrates the sample database online while it is written to, cuts over with the fence and prints a clean verification', async () => {
    const { code, out } = await runDemo();
    expect(code, out.slice(-3000)).toBe(0);
    expect(out).toContain('## pgshift demo: done');
    expect(out).toMatch(/### Schema verification: \d+ objects compared, no difference/);
    expect(out).toContain('### Data verification: 4 tables, all consistent');
    expect(out).toMatch(/✅ [\d,]+ rows in shop\.order_items compared, consistent/);
    // Online: the application wrote during the migration, the fence stopped it, the cutover measured its downtime.
    expect(out).toMatch(/Change capture: consistent since LSN/);
    expect(out).toContain("the application's writes stopped at the fence: cannot execute INSERT in a read-only transaction");
    expect(out).toMatch(/### Cutover: done · write downtime \d+\.\d s/);
    expect(out).toMatch(/✅ sequence shop\.orders_id_seq/);
    expect(out).toMatch(/✅ shop\.order_items: [\d,]+ rows on the source, [\d,]+ on the destination/);
    expect(out).not.toContain('❌');
    expect(out).toContain('Cleaning up');
  });
});

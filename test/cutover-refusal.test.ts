// When a cutover may start (lib/cutover-progress.ts cutoverRefusal): each
// refusal names its reason, and a migration that is consistent, close behind
// and running is accepted. Pure: no servers.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../lib/io/config-load';
import { newCaptureProgress } from '../lib/capture-progress';
import { cutoverRefusal, newCutover } from '../lib/cutover-progress';
import { initialState, type MigrationState } from '../lib/migration-state';

const base = {
  name: 'orders',
  source: { host: 'a', database: 'app', user: 'u', passwordEnv: 'X' },
  destination: { host: 'b', database: 'app', user: 'u', passwordEnv: 'Y' },
};

function ready(over: Partial<MigrationState> = {}): MigrationState {
  const s = initialState(parseConfig(base), 'token', '2026-12-01T00:00:00Z');
  s.phase = 'incremental';
  s.capture = { ...newCaptureProgress('pgshift_orders', '0/1'), consistencyLsn: '0/2', consistentAt: '2026-12-01T00:01:00Z', lagSeconds: 1.5 };
  return Object.assign(s, over);
}

const req = { fence: 'read-only', verify: 'full' } as const;

describe('cutoverRefusal', () => {
  it('accepts a consistent, running migration whose lag is small', () => {
    expect(cutoverRefusal(ready(), parseConfig(base), req)).toBeNull();
  });

  it('names why it refuses', () => {
    const config = parseConfig(base);
    expect(cutoverRefusal(ready({ phase: 'full-load' }), config, req)).toMatch(/still in full load/);
    const early = ready({ phase: 'catch-up' });
    early.capture!.consistentAt = null;
    expect(cutoverRefusal(early, config, req)).toMatch(/before the consistency point .*0\/2/);
    expect(cutoverRefusal(ready({ paused: true }), config, req)).toMatch(/paused: resume it first/);
    const lagging = ready();
    lagging.capture!.lagSeconds = 12.3;
    expect(cutoverRefusal(lagging, config, req)).toBe('lag 12.3 s is above cutover.maxLagSeconds (5 s): wait until the apply catches up');
    const unmeasured = ready();
    unmeasured.capture!.lagSeconds = null;
    expect(cutoverRefusal(unmeasured, config, req)).toMatch(/not measured yet/);
    expect(cutoverRefusal(ready({ cutover: newCutover('2026-12-01T00:02:00Z', 1, 'none', 'full') }), config, req)).toMatch(/already under way/);
    expect(cutoverRefusal(ready({ abortRequested: true }), config, req)).toMatch(/aborting/);
    expect(cutoverRefusal(ready(), parseConfig({ ...base, mode: { incremental: false } }), req)).toMatch(/no change capture/);
  });

  it('refuses when the estimated write downtime exceeds cutover.maxDowntimeSeconds, and retries after a failed attempt', () => {
    const s = ready();
    s.fullLoad = { totals: { rows: 30_000_000 } } as MigrationState['fullLoad'];
    const config = parseConfig({ ...base, cutover: { maxDowntimeSeconds: 30 } });
    expect(cutoverRefusal(s, config, req)).toMatch(/estimated write downtime 10\d\.\d s .* exceeds cutover\.maxDowntimeSeconds \(30 s\)/);
    expect(cutoverRefusal(s, config, { ...req, verify: 'none' })).toBeNull();
    const failed = newCutover('2026-12-01T00:02:00Z', 1, 'read-only', 'full');
    failed.failure = 'verification found 1 inconsistent table';
    expect(cutoverRefusal(ready({ cutover: failed }), parseConfig(base), req)).toBeNull();
  });
});

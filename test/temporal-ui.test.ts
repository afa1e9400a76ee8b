// The Temporal UI in a real browser (issue 4, deliverable 7): a running
// migration is found by its search attribute, and its page shows the static
// summary and the current phase (current details). Debian's chromium, driven
// by playwright-core; the screenshot lands in test-artifacts/.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { describe, expect, inject, it } from 'vitest';
import { abort, getStatus, startMigration, waitForMigration } from '../client';
import { makePair, temporalClient, uid, withWorker } from './harness/env';
import { waitUntil } from './harness/wait';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', 'test-artifacts');

describe('Temporal UI', () => {
  it('finds the migration by search attribute and shows its summary and current phase', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} (Debian package chromium, installed by .ci/setup)`).toBe(true);
    const { uiUrl, namespace } = inject('temporal');
    const pair = await makePair();
    // Enough rows that the throttled full load is still running while the browser looks.
    await pair.source.sql(
      'CREATE TABLE public.items (id bigint PRIMARY KEY, v text); INSERT INTO public.items SELECT g, md5(g::text) FROM generate_series(1, 200000) g',
    );
    const environmentTag = `ui-${uid()}`;
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      environmentTag,
      mode: { schema: true, full: true, incremental: false },
      throttle: { fullRowsPerSecond: 2_000 },
      verification: { full: false, incremental: false, schema: false },
    });
    const client = await temporalClient();
    let browser: Browser | undefined;
    try {
      await withWorker(taskQueue, async () => {
        const workflowId = await startMigration(client, config);
        await waitUntil('the full load', async () => (await getStatus(client, workflowId)).state.phase === 'full-load', { everyMs: 250 });

        browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
        const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
        mkdirSync(ARTIFACTS, { recursive: true });
        const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
        try {
          const query = encodeURIComponent(`PgshiftEnvironment="${environmentTag}"`);
          await page.goto(`${uiUrl}/namespaces/${namespace}/workflows?query=${query}`);
          // The list holds exactly our migration; open it.
          const link = page.getByRole('link', { name: workflowId }).first();
          await link.waitFor({ timeout: 30_000 });
          await link.click();
          await page.waitForURL(new RegExp(`/workflows/${workflowId}/`), { timeout: 30_000 });
          // Static summary (set at start) and current details (markdown from the workflow): the User Metadata tab.
          await page.getByText('User Metadata', { exact: true }).first().click();
          const summary = `pgshift ${config.name}: ${pair.raw().source.host}:${pair.raw().source.port}/`;
          const text = await waitUntil(
            'summary and current details on the page',
            async () => {
              // The UI renders markdown in sandboxed iframes: read every frame.
              const t = (
                await Promise.all(
                  page.frames().map((f) =>
                    f
                      .locator('body')
                      .innerText()
                      .catch(() => ''),
                  ),
                )
              ).join('\n');
              return t.includes(summary) && t.includes(`pgshift ${config.name}: full-load`) ? t : null;
            },
            { timeoutMs: 30_000, everyMs: 250 },
          );
          expect(text).toContain('Summary');
          expect(text).toContain('Current Details');
          expect(text).toMatch(/▶️\s*full-load/);
          await shot('temporal-ui-migration.png');
        } catch (e) {
          await shot('temporal-ui-failure.png').catch(() => undefined);
          writeFileSync(
            path.join(ARTIFACTS, 'temporal-ui-failure.txt'),
            await page
              .locator('body')
              .innerText()
              .catch(() => ''),
          );
          throw e;
        }

        await abort(client, workflowId);
        expect((await waitForMigration(client, config.name)).state.phase).toBe('aborted');
      });
    } finally {
      await browser?.close();
      await client.connection.close();
    }
  });
});

// Polling with a deadline: a test that waits for something says what did not
// happen instead of hanging until the suite's timeout.
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Poll `check` every `everyMs` until it returns a truthy value (returned), or
 * fail after `timeoutMs` with "timed out after N s waiting until <what>"
 * (plus the last value seen, or the last error `check` threw).
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | null | false | 0>,
  opts: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const { timeoutMs = 60_000, everyMs = 100 } = opts;
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e instanceof Error ? `error: ${e.message}` : e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting until ${what} (last: ${JSON.stringify(last)})`);
    await sleep(everyMs);
  }
}

/** A test's timeline: steps marked with the seconds since it began, printed once at the end (where the time went on a slow machine). */
export function startTimeline() {
  const t0 = Date.now();
  const steps: string[] = [];
  return {
    mark: (what: string) => void steps.push(`${((Date.now() - t0) / 1000).toFixed(1)} s ${what}`),
    text: () => steps.join(' | '),
  };
}

// Bounded parallelism for workflow fan-out (chunks, table verifications):
// at most `lanes` items in flight; `stop` is checked before taking each item.
export async function runPool<T>(items: T[], lanes: number, work: (item: T) => Promise<void>, stop: () => Promise<boolean> = async () => false): Promise<T[]> {
  const queue = [...items];
  const lane = async () => {
    while (queue.length) {
      if (await stop()) return;
      // Another lane may have taken the last item while this one awaited `stop`.
      const item = queue.shift();
      if (item === undefined) return;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
  return queue; // what was left when stopped
}

// "Nothing is left running after the suite; ports are free afterwards."
import { existsSync } from 'node:fs';
import { portInUse } from '../../dev/ports';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function assertStopped(what: { pids: number[]; ports: number[]; dataDirs: string[] }): Promise<void> {
  const problems: string[] = [];
  // A stopped process may take a moment to release its port.
  for (let i = 0; i < 50; i++) {
    problems.length = 0;
    for (const pid of what.pids) if (alive(pid)) problems.push(`process ${pid} still runs`);
    for (const port of what.ports) if (await portInUse(port)) problems.push(`port ${port} still accepts connections`);
    for (const d of what.dataDirs) if (existsSync(d)) problems.push(`data directory ${d} still exists`);
    if (!problems.length) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`test environment left behind: ${problems.join('; ')}`);
}

// A session opened inside an activity lives no longer than the activity: when
// Temporal cancels the activity (abort, continue-as-new, a phase stopping),
// the statement the session runs is cancelled on the server and the session
// is closed, so no long statement (an index build, an ANALYZE, a digest of a
// large range, a wait for a lock) outlives the request to stop.
import { type Socket, connect as netConnect } from 'node:net';
import { Context } from '@temporalio/activity';
import type { Client } from 'pg';

/** The cancellation signal of the running activity; null outside an activity. */
export function activityCancellation(): AbortSignal | null {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return null; // not in an activity (CLI, tests calling an activity directly)
  }
}

/** Protocol code of a CancelRequest (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/**
 * Ask the server to cancel the statement a session runs: a CancelRequest on a
 * new connection, keyed by the session's process id and secret key. It needs
 * no login and no privilege, and the server answers it by closing the connection.
 */
export function sendCancelRequest(target: { host: string; port: number }, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    packet.writeInt32BE(processId, 8);
    packet.writeInt32BE(secretKey | 0, 12);
    const socket: Socket = target.host.startsWith('/') ? netConnect(`${target.host}/.s.PGSQL.${target.port}`) : netConnect(target.port, target.host);
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.setTimeout(5_000, done);
    socket.once('connect', () => socket.end(packet));
    socket.once('close', done);
    socket.once('error', done); // the session is closed right after anyway
  });
}

/** The backend identity node-postgres keeps for a session (not in its typings). */
interface SessionKeys {
  processID: number | null;
  secretKey: number | null;
}

/**
 * Cancel the session's statement and close the session as soon as the running
 * activity is cancelled. A no-op outside an activity.
 */
export function endWithActivity(client: Client, target: { host: string; port: number }, signal = activityCancellation()): void {
  if (!signal) return;
  const stop = () => {
    const { processID, secretKey } = client as unknown as SessionKeys;
    const cancelled = processID !== null && secretKey !== null ? sendCancelRequest(target, processID, secretKey) : Promise.resolve();
    // Close after the server got the request: a session busy in a statement reads nothing else until it ends.
    void cancelled.then(() => client.end().catch(() => undefined));
  };
  if (signal.aborted) {
    stop();
    return;
  }
  signal.addEventListener('abort', stop, { once: true });
  client.once('end', () => signal.removeEventListener('abort', stop));
}

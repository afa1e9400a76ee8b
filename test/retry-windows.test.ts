// Retry windows by failure class (activities/retry.ts), without servers: the
// window counts from when the failures began; node-postgres' texts for a lost
// session are connection failures; a constraint violation's key is in the text.
import { describe, expect, it } from 'vitest';
import { classifyFailure, FAILURE, withCode } from '../activities/retry';

const retry = { connectionMinutes: 10, otherMinutes: 1 };
const pgError = (message: string, code: string, detail?: string) => Object.assign(new Error(message), { code, detail });
const ago = (minutes: number) => Date.now() - minutes * 60_000;

describe('retry windows', () => {
  it('retries each class for its own window, counted from the first failure', () => {
    const check = pgError('new row for relation "t" violates check constraint "c"', '23514');
    expect(classifyFailure(check, retry, ago(0.5))).toMatchObject({ type: FAILURE.operation, nonRetryable: false });
    const late = classifyFailure(check, retry, ago(1.5));
    expect(late).toMatchObject({ type: FAILURE.windowExceeded, nonRetryable: true });
    expect(late.message).toMatch(/\[23514\] \(still failing after the 1-minute other-failure retry window\)$/);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(classifyFailure(refused, retry, ago(5))).toMatchObject({ type: FAILURE.connection, nonRetryable: false });
    expect(classifyFailure(refused, retry, ago(11))).toMatchObject({ type: FAILURE.windowExceeded, nonRetryable: true });
  });

  it('classifies a query on a session an outage broke as a connection failure', () => {
    for (const message of [
      'Client has encountered a connection error and is not queryable',
      'Client was closed and is not queryable',
      'Connection terminated unexpectedly',
    ]) {
      expect(classifyFailure(new Error(message), retry, ago(2)).type, message).toBe(FAILURE.connection);
    }
    expect(classifyFailure(pgError('terminating connection due to administrator command', '57P01'), retry, ago(2)).type).toBe(FAILURE.connection);
  });

  it('names the key of a constraint violation from the server’s detail', () => {
    expect(withCode(pgError('duplicate key value violates unique constraint "slots_pos_key"', '23505', 'Key (pos)=(2) already exists.'))).toBe(
      'duplicate key value violates unique constraint "slots_pos_key" (Key (pos)=(2) already exists.) [23505]',
    );
    // Other details (a whole failing row) stay out of the text.
    expect(withCode(pgError('new row violates check constraint "c"', '23514', 'Failing row contains (1, x).'))).toBe(
      'new row violates check constraint "c" [23514]',
    );
  });
});

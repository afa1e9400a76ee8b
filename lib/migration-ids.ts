// Names derived from the migration name, in one place.
import type { Endpoint } from './config';

export const migrationWorkflowId = (name: string) => `pgshift-${name}`;
/** Evaluations are kept apart by time and a random tag: two may start in the same second. */
export const evaluationWorkflowId = (name: string, at: Date, tag: string) =>
  `pgshift-${name}-evaluation-${at.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${tag}`;
export const slotName = (name: string) => `pgshift_${name}`;

/** Accept either the migration name or its workflow id. */
export const toWorkflowId = (idOrName: string) => (idOrName.startsWith('pgshift-') ? idOrName : migrationWorkflowId(idOrName));

/** host:port/database — no user, no secret. */
export const endpointLabel = (e: Pick<Endpoint, 'host' | 'port' | 'database'>) => `${e.host}:${e.port}/${e.database}`;

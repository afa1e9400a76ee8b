// What every precheck check receives. Checks are read-only: they query
// catalogs and settings, never write, and leave no lock behind.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import type { PrecheckItem } from '../../lib/precheck-catalog';
import type { Selection } from '../selection';

export interface PrecheckContext {
  config: Config;
  /** Undefined when the connection failed (the connectivity item says why). */
  source?: Client;
  destination?: Client;
  /** The selected source relations, read once and shared by the checks. */
  selection(): Promise<Selection>;
  /** Called between checks so a long precheck keeps its activity alive. */
  heartbeat(detail: string): void;
}

export type Check = (ctx: PrecheckContext) => Promise<PrecheckItem | PrecheckItem[]>;

// pgshift's custom search attributes: find a migration in the Temporal UI by
// phase, source, destination or environment tag. Imported by workflow code,
// so this module must stay free of I/O.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA_PHASE = defineSearchAttributeKey('PgshiftPhase', SearchAttributeType.KEYWORD);
export const SA_SOURCE = defineSearchAttributeKey('PgshiftSource', SearchAttributeType.KEYWORD);
export const SA_DESTINATION = defineSearchAttributeKey('PgshiftDestination', SearchAttributeType.KEYWORD);
export const SA_ENVIRONMENT = defineSearchAttributeKey('PgshiftEnvironment', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [SA_PHASE, SA_SOURCE, SA_DESTINATION, SA_ENVIRONMENT];

/** `temporal` CLI spelling of a type, for start-dev flags and admin instructions. */
export const cliType = (t: string): string => t.charAt(0) + t.slice(1).toLowerCase();

// Schema verification (after schema migration and at cutover): compare the selected source
// objects with the destination's, in destination names. Both catalogs are read
// by the same reader in one read-only snapshot each, described (schema/describe.ts)
// and compared entry by entry: what is missing, what exists only on the
// destination, and every property that differs.
import type { Client } from 'pg';
import type { Config } from '../lib/config';
import type { SchemaDifference, SchemaVerification } from '../lib/migration-state';
import { withSession } from '../lib/io/session';
import { heartbeat } from './heartbeat';
import { describeCatalog, mappedNaming, type Entry } from './schema/describe';
import { readCatalog, type SourceCatalog } from './schema/read';
import { display, schemaNames, type SchemaNames } from './schema/scope';

/** Kinds the destination may hold more of without it being a difference (extensions are per database). */
const EXTRAS_ALLOWED = new Set(['extension']);

/** Longest property value quoted in a difference (definitions can be long). */
const QUOTE = 160;

/** `c`: a session with the catalog settings, so both sides deparse alike. */
async function snapshotCatalog(c: Client, config: Config): Promise<SourceCatalog> {
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    return await readCatalog(c, config);
  } finally {
    await c.query('ROLLBACK');
  }
}

/**
 * The destination read with the same selection, in destination names: the
 * mapped schemas and, when the source selection names tables, their mapped names.
 */
function destinationSelection(config: Config, cat: SourceCatalog, names: SchemaNames): Config {
  const narrowed = config.objects.include.length > 0 || config.objects.exclude.length > 0;
  return {
    ...config,
    objects: {
      ...config.objects,
      schemas: [...new Set(names.schemas.values())],
      include: narrowed ? cat.relations.filter((r) => 'rp'.includes(r.kind)).map((r) => display(names.relationById(r.oid)!.target)) : [],
      exclude: [],
      rename: { schemas: {}, tables: {}, columns: {} },
      nameCase: 'keep',
      filters: {},
    },
  };
}

function quote(v: string | undefined): string {
  if (v === undefined) return 'none';
  const one = v.replace(/\s+/g, ' ');
  return one.length > QUOTE ? `${JSON.stringify(one.slice(0, QUOTE))}…` : JSON.stringify(one);
}

/** Where two long texts part, with a little context on each side. */
function firstDivergence(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - 40);
  return `differ at character ${i + 1}: source …${quote(a.slice(from, i + 80))}, destination …${quote(b.slice(from, i + 80))}`;
}

export function compareDescriptions(source: Map<string, Entry>, destination: Map<string, Entry>): SchemaVerification {
  const compared: Record<string, number> = {};
  const differences: SchemaDifference[] = [];
  for (const [k, s] of source) {
    compared[s.kind] = (compared[s.kind] ?? 0) + 1;
    const d = destination.get(k);
    if (!d) {
      if (s.parent && !destination.has(s.parent)) continue; // reported with its table
      differences.push({ kind: s.kind, object: s.object, difference: 'missing on the destination' });
      continue;
    }
    for (const prop of new Set([...Object.keys(s.props), ...Object.keys(d.props)])) {
      const a = s.props[prop];
      const b = d.props[prop];
      if (a === b) continue;
      const long = a !== undefined && b !== undefined && Math.max(a.length, b.length) > QUOTE;
      differences.push({
        kind: s.kind,
        object: s.object,
        difference: long ? `${prop} ${firstDivergence(a, b)}` : `${prop}: source ${quote(a)}, destination ${quote(b)}`,
      });
    }
  }
  for (const [k, d] of destination) {
    if (d.parent && !source.has(d.parent)) continue;
    if (!source.has(k) && !EXTRAS_ALLOWED.has(d.kind)) differences.push({ kind: d.kind, object: d.object, difference: 'exists only on the destination' });
  }
  differences.sort((x, y) => x.object.localeCompare(y.object) || x.kind.localeCompare(y.kind));
  return { compared, differences };
}

export async function verifySchema(input: { config: Config }): Promise<SchemaVerification> {
  const { config } = input;
  heartbeat('reading the source catalogs');
  const srcCat = await withSession(config, 'source', 'verify-schema', (c) => snapshotCatalog(c, config));
  const opts = { triggers: config.objects.triggers, ownership: config.objects.ownership };
  const srcNames = schemaNames(srcCat, config);
  const expected = describeCatalog(srcCat, mappedNaming(srcNames, srcCat.quotedKeywords), { ...opts, replicaIdentity: 'migrated' });
  heartbeat('reading the destination catalogs');
  const dstConfig = destinationSelection(config, srcCat, srcNames);
  const dstCat = await withSession(config, 'destination', 'verify-schema', (c) => snapshotCatalog(c, dstConfig));
  const actual = describeCatalog(dstCat, mappedNaming(schemaNames(dstCat, dstConfig), dstCat.quotedKeywords), { ...opts, replicaIdentity: 'actual' });
  return compareDescriptions(expected, actual);
}

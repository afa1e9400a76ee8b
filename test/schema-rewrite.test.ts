// Name mapping inside deparsed SQL (pure: no servers). The rewriter must map
// every name it can attribute with certainty and refuse, with a reason, when a
// renamed name could mean something else.
import { describe, expect, it } from 'vitest';
import { rewriteSql, type NameScope, type RelationNames } from '../activities/schema/rewrite';
import { lex } from '../activities/schema/sqltext';

const rel = (schema: string, name: string, target: [string, string], columns: Record<string, string>): RelationNames => ({
  schema,
  name,
  target: { schema: target[0], table: target[1] },
  columns: new Map(Object.entries(columns)),
});

const user = rel('app', 'user', ['crm', 'customers'], { id: 'id', Email: 'email', name: 'full_name', zone: 'tz' });
const order = rel('app', 'order', ['crm', 'order'], { id: 'id', user_id: 'customer_id', total: 'total' });
const relations = new Map([
  ['app.user', user],
  ['app.order', order],
]);
const scope: NameScope = {
  schemas: new Map([
    ['app', 'crm'],
    ['Billing Ops', 'billing'],
  ]),
  relation: (s, n) => relations.get(`${s}.${n}`),
  object: (s, n) => ({ schema: s === 'app' ? 'crm' : s === 'Billing Ops' ? 'billing' : s, table: n }),
  keywords: new Set(['select', 'from', 'where', 'name', 'zone']),
};
const ok = (text: string, opts = {}) => {
  const r = rewriteSql(text, scope, opts);
  if (!r.ok) throw new Error(r.why);
  return r.sql;
};
const refused = (text: string, opts = {}) => {
  const r = rewriteSql(text, scope, opts);
  return r.ok ? null : r.why;
};

describe('lexer', () => {
  it('keeps strings, quoted names, dollar bodies and comments whole and loses nothing', () => {
    const text = `SELECT 'it''s "x"', E'a\\'b', "we""ird".x, $f$ app."user" $f$, $1 -- app.user\n/* a /* nested */ b */ ::text`;
    const toks = lex(text);
    expect(toks.map((t) => t.text).join('')).toBe(text);
    expect(toks.filter((t) => t.type === 'string').map((t) => t.text)).toEqual([`'it''s "x"'`, `E'a\\'b'`]);
    expect(toks.find((t) => t.type === 'dollar')?.text).toBe('$f$ app."user" $f$');
    expect(toks.find((t) => t.type === 'qident')?.text).toBe('"we""ird"');
  });
});

describe('rewriteSql', () => {
  it('maps schema-qualified objects, implicit aliases and their columns', () => {
    expect(ok(`SELECT "user".id, "user"."Email" FROM app."user" WHERE "user".name <> ''::text`)).toBe(
      `SELECT "customers".id, "customers"."email" FROM "crm"."customers" WHERE "customers"."full_name" <> ''::text`,
    );
  });

  it('maps columns through explicit aliases, and leaves the aliases alone', () => {
    expect(ok(`SELECT u.name, o.total FROM app."user" u JOIN app."order" o ON o.user_id = u.id`)).toBe(
      `SELECT u."full_name", o.total FROM "crm"."customers" u JOIN "crm"."order" o ON o."customer_id" = u.id`,
    );
  });

  it('maps functions, types and sequences in regclass literals; never touches string or body contents', () => {
    expect(ok(`nextval('"Billing Ops".lines_seq'::regclass) || app.f('app.user'::text)::"Billing Ops"."Money"`)).toBe(
      `nextval('"billing"."lines_seq"'::regclass) || "crm"."f"('app.user'::text)::"billing"."Money"`,
    );
    expect(ok(`CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS $$ SELECT name FROM app."user" $$`)).toBe(
      `CREATE FUNCTION "crm"."f"() RETURNS int LANGUAGE sql AS $$ SELECT name FROM app."user" $$`,
    );
  });

  it('maps unqualified columns of the relation an expression belongs to (index, CHECK, trigger)', () => {
    expect(ok(`USING btree (lower(name), "Email" text_pattern_ops) WHERE (id > 0)`, { relation: user })).toBe(
      `USING btree (lower("full_name"), "email" text_pattern_ops) WHERE (id > 0)`,
    );
    expect(
      ok(`CREATE TRIGGER t BEFORE UPDATE OF user_id ON app."order" FOR EACH ROW WHEN ((new.total > old.total)) EXECUTE FUNCTION app.touch()`, {
        relation: order,
        rowAliases: ['old', 'new'],
        names: new Map([['t', 'T2']]),
      }),
    ).toBe(`CREATE TRIGGER "T2" BEFORE UPDATE OF "customer_id" ON "crm"."order" FOR EACH ROW WHEN ((new.total > old.total)) EXECUTE FUNCTION "crm"."touch"()`);
  });

  it('refuses a renamed column reached through an alias it cannot follow', () => {
    expect(refused(`SELECT x.name FROM (SELECT u.name FROM app."user" u) x`)).toMatch(/x\.name/);
    expect(refused(`WITH c AS (SELECT * FROM app."user") SELECT c."Email" FROM c`)).toMatch(/c\.Email/);
  });

  it('refuses a renamed name that may be a keyword of a type name', () => {
    expect(refused(`(zone IS NOT NULL AND x::timestamp with time zone > now())`, { relation: user })).toMatch(/keyword/);
  });

  it('refuses a composite field that may have been renamed', () => {
    expect(refused(`((home).name)`, { relation: user })).toMatch(/field name/);
  });

  it('refuses when two relations share an alias but map it differently', () => {
    expect(refused(`SELECT (SELECT u.id FROM app."user" u), (SELECT u.user_id FROM app."order" u)`)).toMatch(/more than one relation/);
  });

  it('changes nothing when nothing is renamed', () => {
    const same: NameScope = { ...scope, schemas: new Map([['app', 'app']]), relation: () => undefined, object: (s, n) => ({ schema: s, table: n }) };
    const text = `SELECT t.a FROM other.t WHERE t.b = 'app.user'`;
    expect(rewriteSql(text, same)).toEqual({ ok: true, sql: text });
  });
});

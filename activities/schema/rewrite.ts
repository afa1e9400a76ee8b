// Apply the name mapping to SQL deparsed by the source server (view queries,
// defaults, CHECKs, index expressions, trigger and function headers).
//
// The source session runs with an empty search_path, so every reference to an
// object outside pg_catalog is schema-qualified: `schema.object` pairs are
// mapped exactly. Column references are mapped through the relation they are
// qualified with (its name or alias, as the deparser always prints them), or
// through the one relation an expression belongs to. Anything we cannot
// attribute with certainty while it names something renamed makes the rewrite
// fail with a reason: the caller reports the object instead of emitting SQL
// that would silently mean something else.
import { ident, literal, type TableName } from '../../lib/ident';
import { identName, isIdent, lex, parseNameList, stringValue, type Token } from './sqltext';

export interface RelationNames {
  schema: string;
  name: string;
  target: TableName;
  /** Source column name → destination column name. */
  columns: Map<string, string>;
}

export interface NameScope {
  /** Selected source schema → destination schema. */
  schemas: Map<string, string>;
  /** A relation of a selected schema (table, partition, view, sequence, composite type…). */
  relation(schema: string, name: string): RelationNames | undefined;
  /** Destination name of any other object of a selected schema. */
  object(schema: string, name: string): TableName;
  /** pg_get_keywords(): an unquoted lower-case keyword may be a keyword or a name. */
  keywords: Set<string>;
}

export interface RewriteOptions {
  /** Unqualified column names belong to this relation (index, CHECK, DEFAULT, partition key, trigger). */
  relation?: RelationNames;
  /** Names that denote `relation` as a row (OLD / NEW in a trigger's WHEN). */
  rowAliases?: string[];
  /** Unqualified names renamed explicitly (a trigger's own name). */
  names?: Map<string, string>;
}

export type Rewritten = { ok: true; sql: string } | { ok: false; why: string };

// Keywords the deparser prints in lower case: the words of built-in type names
// (format_type) and boolean constants. Every other keyword comes out in capitals.
const LOWER_CASE_KEYWORDS = new Set(
  'with without time zone varying precision character char varchar national nchar double bit interval timestamp year month day hour minute second to true false numeric decimal dec integer int smallint bigint real float boolean'.split(
    ' ',
  ),
);

const isKeywordToken = (t: Token, keywords: Set<string>) => t.type === 'ident' && (t.text !== t.text.toLowerCase() || keywords.has(t.text));
const isUpperKeyword = (t: Token | undefined, word?: string) =>
  !!t && t.type === 'ident' && t.text === t.text.toUpperCase() && t.text !== t.text.toLowerCase() && (!word || t.text === word);

interface Alias {
  rel: RelationNames | null; // null: a relation we do not know (alias with a column list, other schema)
  implicit: boolean;
}

class Rewriter {
  private readonly toks: Token[];
  /** Indexes of significant tokens (no spaces or comments). */
  private readonly sig: number[];
  private readonly out: (string | undefined)[];
  private readonly consumed = new Set<number>();
  private readonly aliases = new Map<string, Alias[]>();
  private readonly referenced: RelationNames[] = [];
  private why: string | null = null;

  constructor(
    text: string,
    private readonly scope: NameScope,
    private readonly opts: RewriteOptions,
  ) {
    this.toks = lex(text);
    this.sig = this.toks.flatMap((t, i) => (t.type === 'space' || t.type === 'comment' ? [] : [i]));
    this.out = new Array(this.toks.length);
    if (opts.relation) {
      this.referenced.push(opts.relation);
      for (const a of opts.rowAliases ?? []) this.addAlias(a, opts.relation, false);
    }
  }

  private unsafe(why: string) {
    this.why ??= why;
  }

  private addAlias(name: string, rel: RelationNames | null, implicit: boolean) {
    this.aliases.set(name, [...(this.aliases.get(name) ?? []), { rel, implicit }]);
  }

  /** Significant token at position p of `sig`. */
  private at(p: number): Token | undefined {
    return this.toks[this.sig[p]];
  }

  run(): Rewritten {
    this.qualifiedNames();
    this.regclassLiterals();
    const renamed = this.renamedNames();
    this.qualifiedColumns(renamed);
    this.loneNames(renamed);
    this.checkAliasCollisions();
    if (this.why) return { ok: false, why: this.why };
    return { ok: true, sql: this.toks.map((t, i) => this.out[i] ?? t.text).join('') };
  }

  /** Chains `a.b[.c]` of adjacent identifier tokens starting at raw index i. */
  private chainAt(i: number): number[] {
    const chain = [i];
    while (this.toks[chain[chain.length - 1] + 1]?.text === '.' && isIdent(this.toks[chain[chain.length - 1] + 2])) {
      chain.push(chain[chain.length - 1] + 2);
    }
    return chain;
  }

  private qualifiedNames() {
    for (let p = 0; p < this.sig.length; p++) {
      const i = this.sig[p];
      if (this.consumed.has(i) || !isIdent(this.toks[i]) || this.toks[i - 1]?.text === '.') continue;
      const chain = this.chainAt(i);
      if (chain.length < 2) continue;
      const [a, b] = chain.map((k) => identName(this.toks[k]));
      const schema = this.scope.schemas.get(a);
      if (schema === undefined) continue; // alias.column, or an object outside the selection: later passes
      chain.forEach((k) => this.consumed.add(k));
      const rel = this.scope.relation(a, b);
      if (!rel) {
        const t = this.scope.object(a, b);
        this.out[chain[0]] = ident(t.schema);
        this.out[chain[1]] = ident(t.table);
        continue;
      }
      this.referenced.push(rel);
      this.out[chain[0]] = ident(rel.target.schema);
      this.out[chain[1]] = ident(rel.target.table);
      if (chain.length > 2) {
        const col = identName(this.toks[chain[2]]);
        this.out[chain[2]] = ident(rel.columns.get(col) ?? col);
        continue;
      }
      this.relationAlias(p + 2, rel);
    }
  }

  /** After `schema.relation` (at sig position p): an explicit alias, or the relation's own name. */
  private relationAlias(p: number, rel: RelationNames) {
    const next = this.at(p + 1);
    const after = this.at(p + 2);
    if (next && isIdent(next) && !isKeywordToken(next, this.scope.keywords) && after?.text !== '.') {
      // `rel alias(col, …)` renames the columns: references use those names, unknown to us.
      this.addAlias(identName(next), after?.text === '(' ? null : rel, false);
      this.consumed.add(this.sig[p + 1]);
    } else {
      this.addAlias(rel.name, rel, true);
    }
  }

  private regclassLiterals() {
    for (let p = 0; p + 2 < this.sig.length; p++) {
      const t = this.at(p)!;
      const value = stringValue(t);
      if (value === null || this.at(p + 1)?.text !== '::' || !/^reg(class|type)$/i.test(this.at(p + 2)?.text ?? '')) continue;
      const parts = parseNameList(value);
      if (!parts || parts.length !== 2 || !this.scope.schemas.has(parts[0])) continue;
      const rel = this.scope.relation(parts[0], parts[1]);
      const target = rel?.target ?? this.scope.object(parts[0], parts[1]);
      this.out[this.sig[p]] = literal(`${ident(target.schema)}.${ident(target.table)}`);
    }
  }

  /** Every source name in scope whose destination name differs. */
  private renamedNames(): Set<string> {
    const out = new Set<string>();
    for (const [from, to] of this.scope.schemas) if (from !== to) out.add(from);
    for (const rel of this.referenced) {
      if (rel.name !== rel.target.table) out.add(rel.name);
      for (const [from, to] of rel.columns) if (from !== to) out.add(from);
    }
    return out;
  }

  /** The relation an alias denotes, when all its uses agree. */
  private resolveAlias(name: string): Alias | 'ambiguous' | undefined {
    const uses = this.aliases.get(name);
    if (!uses) return undefined;
    const first = uses[0];
    const same = uses.every((u) => u.rel === first.rel && u.implicit === first.implicit);
    return same ? first : 'ambiguous';
  }

  /** The new text of an alias token (only implicit aliases follow a relation rename). */
  private aliasTarget(name: string, alias: Alias): string {
    return alias.implicit && alias.rel ? alias.rel.target.table : name;
  }

  private qualifiedColumns(renamed: Set<string>) {
    for (let p = 0; p < this.sig.length; p++) {
      const i = this.sig[p];
      if (this.consumed.has(i) || !isIdent(this.toks[i]) || this.toks[i - 1]?.text === '.') continue;
      const chain = this.chainAt(i);
      if (chain.length < 2) continue;
      chain.forEach((k) => this.consumed.add(k));
      const [x, c] = chain.map((k) => identName(this.toks[k]));
      const alias = this.resolveAlias(x);
      if (alias === 'ambiguous') {
        if (renamed.has(x) || renamed.has(c)) this.unsafe(`${x}.${c} may denote more than one relation`);
        continue;
      }
      if (!alias?.rel) {
        if (renamed.has(c)) this.unsafe(`${x}.${c} refers to a renamed column through ${x}, which is not a relation we can follow`);
        continue;
      }
      const tx = this.aliasTarget(x, alias);
      if (tx !== x) this.out[chain[0]] = ident(tx);
      const tc = alias.rel.columns.get(c);
      if (tc !== undefined && tc !== c) this.out[chain[1]] = ident(tc);
    }
  }

  private loneNames(renamed: Set<string>) {
    for (let p = 0; p < this.sig.length; p++) {
      const i = this.sig[p];
      const t = this.toks[i];
      if (this.consumed.has(i) || !isIdent(t)) continue;
      if (t.type === 'ident' && t.text !== t.text.toLowerCase()) continue; // the deparser prints keywords in capitals
      const prev = this.at(p - 1);
      const next = this.at(p + 1);
      if (next?.text === '(' && t.type === 'ident') continue; // unqualified function: pg_catalog
      if (prev?.text === '::' || isUpperKeyword(prev, 'AS') || isUpperKeyword(prev, 'USING')) continue;
      const name = identName(t);
      if (this.toks[i - 1]?.text === '.') {
        // `(expr).field`: a composite field, whose type we do not know here.
        if (renamed.has(name)) this.unsafe(`field ${name} of a composite value may have been renamed`);
        continue;
      }
      const explicit = this.opts.names?.get(name);
      if (explicit !== undefined) {
        this.out[i] = ident(explicit);
        continue;
      }
      const keywordLike = t.type === 'ident' && LOWER_CASE_KEYWORDS.has(name);
      const column = this.opts.relation?.columns.get(name);
      if (column !== undefined) {
        if (column === name) continue;
        if (keywordLike) this.unsafe(`${name} may be the renamed column or an SQL keyword`);
        else this.out[i] = ident(column);
        continue;
      }
      const alias = this.resolveAlias(name);
      if (alias && alias !== 'ambiguous') {
        const target = this.aliasTarget(name, alias);
        if (target !== name) this.out[i] = ident(target);
        continue;
      }
      if (renamed.has(name)) this.unsafe(`${name} names a renamed object but is not qualified`);
    }
  }

  /** A renamed implicit alias must not become the name of another alias. */
  private checkAliasCollisions() {
    const targets = new Map<string, RelationNames | null>();
    for (const [name, uses] of this.aliases) {
      for (const u of uses) {
        const t = this.aliasTarget(name, u);
        if (targets.has(t) && targets.get(t) !== u.rel) this.unsafe(`alias ${t} would denote two relations after renaming`);
        targets.set(t, u.rel);
      }
    }
  }
}

export function rewriteSql(text: string, scope: NameScope, opts: RewriteOptions = {}): Rewritten {
  return new Rewriter(text, scope, opts).run();
}

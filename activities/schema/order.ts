// Order the statements by the source's real dependencies (pg_depend):
// prerequisites first, stage by stage. A statement that needs an object of a
// later stage moves to that stage; one that needs an object not created is
// dropped and reported; cycles through CREATE TABLE are broken the way pg_dump
// does, by creating the offending DEFAULTs and CHECKs afterwards.
import { dependencyMap, objKey, type SourceCatalog } from './read';
import { KIND_ORDER, STAGES, type Statement } from './statement';

export interface Ordered {
  statements: Statement[];
  warnings: string[];
  /** User objects outside the selection that statements need (objKey → first statement needing it). */
  outside: Map<string, string>;
}

/** Map an object to the one that creates it (array → element type, rowtype → relation, …). */
function canonicalizer(cat: SourceCatalog): (key: string) => string {
  const alias = new Map<string, string>();
  for (const t of cat.types) {
    alias.set(objKey('pg_type', t.arrayType), objKey('pg_type', t.oid));
    const m = t.range?.multirange;
    if (m) {
      alias.set(objKey('pg_type', m.oid), objKey('pg_type', t.oid));
      alias.set(objKey('pg_type', m.arrayType), objKey('pg_type', t.oid));
    }
  }
  for (const r of [...cat.relations, ...cat.excludedRelations]) {
    alias.set(objKey('pg_type', r.rowType), objKey('pg_class', r.oid));
    alias.set(objKey('pg_type', r.rowArrayType), objKey('pg_class', r.oid));
  }
  for (const i of cat.indexes) if (i.constraintOid) alias.set(objKey('pg_class', i.oid), objKey('pg_constraint', i.constraintOid));
  for (const [rule, view] of cat.viewRules) alias.set(objKey('pg_rewrite', rule), objKey('pg_class', view));
  for (const [oid, s] of cat.sequences) if (s.owner?.kind === 'i') alias.set(objKey('pg_class', oid), objKey('pg_class', s.owner.relid));
  for (const [member, ext] of cat.extensionMembers) alias.set(member, objKey('pg_extension', ext));
  return (key) => {
    let k = key;
    for (let i = 0; i < 5 && alias.has(k); i++) k = alias.get(k)!;
    return k;
  };
}

interface Graph {
  /** Prerequisite statement indexes of each statement. */
  edges: Set<number>[];
  /** Why a statement cannot be created: the missing object's description. */
  missing: (string | null)[];
  outside: Map<string, number>;
}

const FIRST_NORMAL_OID = 16384;

function buildGraph(statements: Statement[], canonical: (k: string) => string, deps: Map<string, string[]>, excluded: Map<string, string>): Graph {
  const provider = new Map<string, number>();
  statements.forEach((s, i) => s.owns.forEach((k) => provider.set(canonical(k), i)));
  const edges = statements.map(() => new Set<number>());
  const missing: (string | null)[] = statements.map(() => null);
  const outside = new Map<string, number>();
  statements.forEach((s, i) => {
    const needs = [...s.owns.flatMap((k) => deps.get(k) ?? []), ...s.after];
    for (const raw of needs) {
      const k = canonical(raw);
      const p = provider.get(k);
      if (p !== undefined) {
        if (p !== i) edges[i].add(p);
      } else if (excluded.has(k)) missing[i] ??= excluded.get(k)!;
      else if (Number(k.split(':')[1]) >= FIRST_NORMAL_OID && !outside.has(k)) outside.set(k, i);
    }
  });
  return { edges, missing, outside };
}

/** Drop statements whose prerequisites are not created (transitively) and unneeded optional ones. */
function prune(statements: Statement[], graph: Graph, warnings: string[]): Set<number> {
  const dropped = new Set<number>();
  const describe = (s: Statement) => `${s.kind} ${s.object}`;
  let changed = true;
  while (changed) {
    changed = false;
    statements.forEach((s, i) => {
      if (dropped.has(i)) return;
      const gone = [...graph.edges[i]].find((p) => dropped.has(p));
      const why = graph.missing[i] ?? (gone !== undefined ? `${describe(statements[gone])} (not created)` : null);
      if (why === null) return;
      dropped.add(i);
      changed = true;
      if (!s.quiet) warnings.push(`${describe(s)} not created: it depends on ${why}`);
    });
  }
  const needed = new Set<number>();
  statements.forEach((_, i) => {
    if (!dropped.has(i)) graph.edges[i].forEach((p) => needed.add(p));
  });
  statements.forEach((s, i) => {
    if (s.optional && !needed.has(i)) dropped.add(i);
  });
  return dropped;
}

/** Strongly connected components with more than one statement (Tarjan). */
function cycles(n: number, edges: Set<number>[], skip: Set<number>): number[][] {
  let index = 0;
  const idx = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  const out: number[][] = [];
  const visit = (v: number) => {
    // Iterative to survive deep dependency chains.
    const work: [number, number[]][] = [[v, [...edges[v]]]];
    idx[v] = low[v] = index++;
    stack.push(v);
    onStack[v] = true;
    while (work.length) {
      const [u, rest] = work[work.length - 1];
      const w = rest.pop();
      if (w !== undefined) {
        if (skip.has(w)) continue;
        if (idx[w] < 0) {
          idx[w] = low[w] = index++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, [...edges[w]]]);
        } else if (onStack[w]) low[u] = Math.min(low[u], idx[w]);
        continue;
      }
      work.pop();
      if (work.length) low[work[work.length - 1][0]] = Math.min(low[work[work.length - 1][0]], low[u]);
      if (low[u] === idx[u]) {
        const comp: number[] = [];
        let x: number;
        do {
          x = stack.pop()!;
          onStack[x] = false;
          comp.push(x);
        } while (x !== u);
        if (comp.length > 1) out.push(comp);
      }
    }
  };
  for (let v = 0; v < n; v++) if (idx[v] < 0 && !skip.has(v)) visit(v);
  return out;
}

/** A statement that needs an object of a later stage runs in that stage. */
function promoteStages(statements: Statement[], edges: Set<number>[], dropped: Set<number>) {
  const rank = (i: number) => STAGES.indexOf(statements[i].stage);
  let changed = true;
  while (changed) {
    changed = false;
    statements.forEach((s, i) => {
      if (dropped.has(i)) return;
      for (const p of edges[i]) {
        if (!dropped.has(p) && rank(p) > rank(i)) {
          s.stage = statements[p].stage;
          changed = true;
        }
      }
    });
  }
}

class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}
  get size() {
    return this.items.length;
  }
  push(x: T) {
    const a = this.items;
    a.push(x);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length && last !== undefined) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Kahn's algorithm, preferring earlier stages, then pg_dump-like kind order, then render order. */
function topoSort(statements: Statement[], edges: Set<number>[], dropped: Set<number>, warnings: string[]): Statement[] {
  const live = statements.map((_, i) => i).filter((i) => !dropped.has(i));
  const kindRank = (k: string) => (KIND_ORDER.includes(k) ? KIND_ORDER.indexOf(k) : KIND_ORDER.length);
  const key = (i: number) => [STAGES.indexOf(statements[i].stage), kindRank(statements[i].kind), i];
  const less = (a: number, b: number) => {
    const ka = key(a);
    const kb = key(b);
    for (let j = 0; j < ka.length; j++) if (ka[j] !== kb[j]) return ka[j] < kb[j];
    return false;
  };
  const pending = new Map(live.map((i) => [i, [...edges[i]].filter((p) => !dropped.has(p)).length]));
  const users = new Map<number, number[]>();
  for (const i of live) {
    for (const p of edges[i]) {
      if (dropped.has(p)) continue;
      if (!users.has(p)) users.set(p, []);
      users.get(p)!.push(i);
    }
  }
  const ready = new Heap<number>(less);
  for (const [i, n] of pending) if (n === 0) ready.push(i);
  const out: Statement[] = [];
  const done = new Set<number>();
  while (out.length < live.length) {
    let next = ready.pop();
    if (next === undefined) {
      // An unbreakable cycle: emit its first statement anyway and say so; applying may then fail.
      next = live.filter((i) => !done.has(i)).sort((a, b) => (less(a, b) ? -1 : 1))[0];
      warnings.push(`dependency cycle through ${statements[next].kind} ${statements[next].object}: created in an order that may fail`);
    }
    if (done.has(next)) continue;
    done.add(next);
    out.push(statements[next]);
    for (const u of users.get(next) ?? []) {
      const n = pending.get(u)! - 1;
      pending.set(u, n);
      if (n === 0 && !done.has(u)) ready.push(u);
    }
  }
  return out;
}

export function orderStatements(input: Statement[], cat: SourceCatalog, excluded: Map<string, string>): Ordered {
  const canonical = canonicalizer(cat);
  const deps = dependencyMap(cat);
  let statements = input;
  for (let round = 0; ; round++) {
    const warnings: string[] = [];
    const graph = buildGraph(statements, canonical, deps, excluded);
    const dropped = prune(statements, graph, warnings);
    const splittable = cycles(statements.length, graph.edges, dropped)
      .flat()
      .filter((i) => statements[i].split);
    if (splittable.length && round < 10) {
      const split = new Set(splittable);
      statements = statements.flatMap((s, i) => (split.has(i) ? s.split!() : [s]));
      continue;
    }
    promoteStages(statements, graph.edges, dropped);
    const outside = new Map([...graph.outside].filter(([, i]) => !dropped.has(i)).map(([k, i]) => [k, `${statements[i].kind} ${statements[i].object}`]));
    return { statements: topoSort(statements, graph.edges, dropped, warnings), warnings, outside };
  }
}

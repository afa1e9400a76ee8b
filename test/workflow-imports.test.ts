// Workflow code runs in Temporal's deterministic sandbox: a workflow that
// (even indirectly) imports a module reaching `pg`, the file system or the
// network breaks the bundle or, worse, its determinism. This walks the value
// imports (type-only imports vanish at compile time) of every workflow module
// and fails on anything outside workflows/ and the pure part of lib/.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
/** Packages a workflow may load: the SDK's workflow side and pure helpers. */
const ALLOWED_PACKAGES = ['@temporalio/workflow', '@temporalio/common', 'zod'];
/** Folders whose modules a workflow may load (lib/io/ does I/O and is not one of them). */
const ALLOWED_DIRS = ['workflows', 'lib'];
const FORBIDDEN_DIRS = ['lib/io'];

function valueImports(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st)) {
      const c = st.importClause;
      if (c?.isTypeOnly) continue;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : null;
      if (c && !c.name && named && named.length && named.every((e) => e.isTypeOnly)) continue;
      out.push((st.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier && !st.isTypeOnly) {
      out.push((st.moduleSpecifier as ts.StringLiteral).text);
    }
  }
  sf.forEachChild(function visit(n): void {
    if (ts.isCallExpression(n) && n.expression.getText(sf) === 'require' && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) out.push(n.arguments[0].text);
    n.forEachChild(visit);
  });
  return out;
}

function resolveLocal(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const f of [`${base}.ts`, path.join(base, 'index.ts')]) if (existsSync(f)) return f;
  throw new Error(`${path.relative(ROOT, from)}: cannot resolve ${spec}`);
}

/** Every module a workflow loads, with the chain that led there. */
export function workflowImportProblems(entry: string): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const walk = (file: string, chain: string[]) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of valueImports(file)) {
      const via = [...chain, path.relative(ROOT, file)].join(' → ');
      if (!spec.startsWith('.')) {
        if (!ALLOWED_PACKAGES.includes(spec)) problems.push(`${via} imports package ${spec}`);
        continue;
      }
      const target = resolveLocal(file, spec);
      const rel = path.relative(ROOT, target);
      const dir = rel.split(path.sep)[0];
      if (!ALLOWED_DIRS.includes(dir) || FORBIDDEN_DIRS.some((d) => rel.startsWith(d + path.sep))) {
        problems.push(`${via} imports ${rel}`);
        continue;
      }
      walk(target, [...chain, path.relative(ROOT, file)]);
    }
  };
  walk(entry, []);
  return problems;
}

describe('workflow bundle boundary', () => {
  it('workflows load only workflow-safe modules (no pg, no fs, no lib/io, no activities)', () => {
    expect(workflowImportProblems(path.join(ROOT, 'workflows', 'index.ts'))).toEqual([]);
  });

  it('catches a value import of an I/O module through lib/', () => {
    // A workflow-side module that imported lib/io/pg would be reported with its chain.
    const problems = workflowImportProblems(path.join(ROOT, 'lib', 'io', 'pg.ts'));
    expect(problems.some((p) => p.includes('imports package pg'))).toBe(true);
  });

  it('every module of lib/ outside lib/io is workflow-safe', () => {
    const files = readdirSync(path.join(ROOT, 'lib')).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    expect(files.flatMap((f) => workflowImportProblems(path.join(ROOT, 'lib', f)))).toEqual([]);
  });
});

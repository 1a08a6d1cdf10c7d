// Guards issue 29: no circle of run-time imports in lib/. A circle makes what a module sees of
// another depend on which one was required first (a class can be undefined at the point of use),
// and it was what kept every module of the package loading on `require('depcache')`.
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const LIB = path.join(__dirname, '..', 'lib');

/**
 * The module specifiers `source` loads when it runs: `import ... from` and `export ... from`
 * unless every name is a type (`import type`, `import { type A }`), side-effect imports,
 * `import x = require()`, `require(...)` calls and `import(...)` expressions. Types never run:
 * `import type`, `typeof import('x')` and names marked `type` are not edges.
 */
export function runtimeImports(fileName: string, source: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const literal = (node: ts.Node | undefined): void => {
    if (node !== undefined && ts.isStringLiteralLike(node)) found.push(node.text);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const runs =
        clause === undefined || // import './side-effect'
        (!clause.isTypeOnly &&
          (clause.name !== undefined ||
            bindings === undefined ||
            ts.isNamespaceImport(bindings) ||
            bindings.elements.length === 0 ||
            bindings.elements.some((e) => !e.isTypeOnly)));
      if (runs) literal(node.moduleSpecifier);
    } else if (ts.isExportDeclaration(node)) {
      const clause = node.exportClause;
      const runs = !node.isTypeOnly && (clause === undefined || !ts.isNamedExports(clause) || clause.elements.some((e) => !e.isTypeOnly));
      if (runs) literal(node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node)) {
      if (!node.isTypeOnly && ts.isExternalModuleReference(node.moduleReference)) literal(node.moduleReference.expression);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if ((ts.isIdentifier(callee) && callee.text === 'require') || callee.kind === ts.SyntaxKind.ImportKeyword) literal(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

function libFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? libFiles(path.join(dir, d.name)) : d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [path.join(dir, d.name)] : []));
}

/** `specifier` as a file of lib/, or undefined for a package or a file outside lib/. */
function resolveInLib(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts'), base]) {
    if (candidate.startsWith(LIB + path.sep) && candidate.endsWith('.ts') && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

// For the failure message: every module of a circle's component, where it is more than the circle.
const circleMembers = new WeakMap<string[], string[]>();

/** Every circle of `graph` (one per strongly connected component of more than one node, or a self-loop), as paths. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm, iterative over the nodes and recursive over edges (lib/ is small).
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const strong = (v: string): void => {
    indices.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, indices.get(w) as number));
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(pathThrough(graph, component));
      if (component.length > 2) circleMembers.set(cycles[cycles.length - 1] as string[], component.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) strong(v);
  return cycles;
}

/** One circle inside `component`, from its first node back to it, for the failure message. */
function pathThrough(graph: ReadonlyMap<string, readonly string[]>, component: readonly string[]): string[] {
  const inside = new Set(component);
  const start = [...component].sort()[0] as string;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift() as string;
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const circle = [start];
        for (let at = v; at !== start; at = previous.get(at) as string) circle.splice(1, 0, at);
        return [...circle, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...component];
}

function libGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of libFiles(LIB)) {
    const rel = (p: string) => path.relative(LIB, p).split(path.sep).join('/');
    const edges = runtimeImports(file, fs.readFileSync(file, 'utf8'))
      .map((s) => resolveInLib(file, s))
      .filter((p): p is string => p !== undefined)
      .map(rel);
    graph.set(rel(file), [...new Set(edges)]);
  }
  return graph;
}

describe('import graph (issue 29)', () => {
  it('reads run-time imports and skips types', () => {
    const source = `
      import type { A } from './type-only';
      import { type B, type C } from './names-all-types';
      import { type D, e } from './one-value';
      import f from './default';
      import * as g from './namespace';
      import './side-effect';
      export { h } from './re-export';
      export type { I } from './re-export-type';
      export * from './star';
      import j = require('./import-equals');
      type K = typeof import('./type-query');
      const l = require('./required') as typeof import('./required-type');
      async function m() { return import('./dynamic'); }
      // require('./in-a-comment')
      const n = "require('./in-a-string')";
    `;
    expect(runtimeImports('x.ts', source)).to.deep.equal([
      './one-value',
      './default',
      './namespace',
      './side-effect',
      './re-export',
      './star',
      './import-equals',
      './required',
      './dynamic',
    ]);
  });

  it('finds circles, and only circles', () => {
    const graph = new Map<string, string[]>([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    expect(findCycles(graph)).to.deep.equal([['a', 'b', 'c', 'a'], ['e', 'e']]);
    expect(findCycles(new Map([['a', ['b']], ['b', []]]))).to.deep.equal([]);
  });

  it('sees the edges lib/ has (the parse is not vacuous)', () => {
    const graph = libGraph();
    expect(graph.size).to.be.greaterThan(40);
    expect(graph.get('index.ts')).to.include('manager.ts');
    expect(graph.get('cache.ts')).to.include('manager.ts');
    expect(graph.get('persistent-cache.ts')).to.include('cache.ts');
  });

  it('has no circle of run-time imports in lib/', () => {
    const cycles = findCycles(libGraph());
    const shown = cycles.map((c) => `${c.join(' -> ')}${circleMembers.has(c) ? ` (modules in circles with these: ${(circleMembers.get(c) as string[]).join(', ')})` : ''}`);
    expect(shown, 'run-time import circles').to.deep.equal([]);
  });
});

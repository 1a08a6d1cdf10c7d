// Renders a manager's dependency graph as text: an indented tree, JSON, Graphviz DOT or a
// Mermaid flowchart. Pure: the CLI (from the manifest and the files) and a live manager (from
// its caches) build the model, this module only writes it.

/** One cache in a graph. */
export interface GraphNode {
  readonly name: string;
  /** Its class: AutoSyncCache, PersistentCache, JsonCache... */
  readonly kind: string;
  /** Entries, when known (in memory, or in the saved file's header). */
  readonly entries?: number | undefined;
  /** When it was last saved (ISO 8601), when known. */
  readonly savedAt?: string | undefined;
  /** Its saved file fails `depcache verify`. */
  readonly corrupt?: boolean | undefined;
  /** The caches its results were computed over (memoize's `dependsOn`). */
  readonly inputs?: readonly string[] | undefined;
}

/** A dependency graph: the caches, and for each parent its dependents. */
export interface GraphModel {
  readonly manager: string;
  readonly nodes: readonly GraphNode[];
  readonly dependents: Readonly<Record<string, readonly string[]>>;
}

/** What `manager.graph()` and `depcache graph --format` write. */
export type GraphFormat = 'text' | 'json' | 'dot' | 'mermaid';

export const GRAPH_FORMATS: readonly GraphFormat[] = ['text', 'json', 'dot', 'mermaid'];

/** @throws {TypeError} for a format that is not one of {@link GRAPH_FORMATS} */
export function renderGraph(graph: GraphModel, format: GraphFormat): string {
  switch (format) {
    case 'text':
      return renderText(graph);
    case 'json':
      return JSON.stringify(
        { manager: graph.manager, caches: graph.nodes, dependents: graph.dependents },
        null,
        1,
      );
    case 'dot':
      return renderDot(graph);
    case 'mermaid':
      return renderMermaid(graph);
    default:
      throw new TypeError(`format: expected one of ${GRAPH_FORMATS.join(', ')}, got ${String(format)}`);
  }
}

/** Every parent → dependent edge, sorted, for caches that are in the graph or named by it. */
function edges(graph: GraphModel): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const parent of Object.keys(graph.dependents).sort()) {
    for (const child of [...(graph.dependents[parent] ?? [])].sort()) out.push([parent, child]);
  }
  return out;
}

/** The nodes sorted by name, plus a bare node for any cache only an edge names. */
function allNodes(graph: GraphModel): GraphNode[] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  for (const [a, b] of edges(graph)) {
    for (const name of [a, b]) if (!byName.has(name)) byName.set(name, { name, kind: 'not registered' });
  }
  for (const node of graph.nodes) {
    for (const input of node.inputs ?? []) if (!byName.has(input)) byName.set(input, { name: input, kind: 'not registered' });
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function details(node: GraphNode): string[] {
  const count = node.entries === undefined ? '' : ` · ${node.entries.toLocaleString('en-US')} ${node.entries === 1 ? 'entry' : 'entries'}`;
  const lines = [node.kind + count];
  if (node.savedAt !== undefined) lines.push(`saved ${node.savedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`);
  if (node.corrupt === true) lines.push('FAILS VERIFY');
  return lines;
}

function renderText(graph: GraphModel): string {
  const nodes = new Map(allNodes(graph).map((n) => [n.name, n]));
  const children = new Set(Object.values(graph.dependents).flat());
  const lines: string[] = [];
  const shown = new Set<string>();
  const walk = (name: string, depth: number, path: Set<string>) => {
    const node = nodes.get(name) ?? { name, kind: '?' };
    const cycle = path.has(name);
    const over = node.inputs && node.inputs.length > 0 ? ` ⇠ results computed over ${[...node.inputs].sort().join(', ')}` : '';
    const bad = node.corrupt === true ? ' ✗ fails verify' : '';
    lines.push(`${'  '.repeat(depth)}${depth > 0 ? '└ ' : ''}${name} (${node.kind})${cycle ? ' ↺ cycle' : ''}${bad}${over}`);
    shown.add(name);
    if (cycle) return;
    for (const child of [...(graph.dependents[name] ?? [])].sort()) walk(child, depth + 1, new Set([...path, name]));
  };
  for (const node of nodes.values()) if (!children.has(node.name)) walk(node.name, 0, new Set());
  // Caches only reachable through a cycle have no root; show them too.
  for (const name of nodes.keys()) if (!shown.has(name)) walk(name, 0, new Set());
  return lines.join('\n');
}

/** A DOT double-quoted string. */
function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function renderDot(graph: GraphModel): string {
  const lines = [`digraph ${dotString(`depcache ${graph.manager}`)} {`, '  rankdir=LR;', '  node [shape=box, fontname="Helvetica"];'];
  for (const node of allNodes(graph)) {
    const attrs = [`label=${dotString([node.name, ...details(node)].join('\n'))}`];
    if (node.corrupt === true) attrs.push('color=red', 'penwidth=3');
    if (node.kind === 'not registered') attrs.push('style=dashed');
    lines.push(`  ${dotString(node.name)} [${attrs.join(', ')}];`);
  }
  for (const [parent, child] of edges(graph)) lines.push(`  ${dotString(parent)} -> ${dotString(child)};`);
  for (const node of allNodes(graph)) {
    for (const input of [...(node.inputs ?? [])].sort()) lines.push(`  ${dotString(input)} -> ${dotString(node.name)} [style=dashed, label="inputs"];`);
  }
  lines.push('}');
  return lines.join('\n');
}

/** Text inside a Mermaid "..." label: quotes and angle brackets as entities, lines as <br/>. */
function mermaidLabel(lines: string[]): string {
  const esc = (t: string) => t.replace(/&/g, '#amp;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
  return `"${lines.map(esc).join('<br/>')}"`;
}

function renderMermaid(graph: GraphModel): string {
  const nodes = allNodes(graph);
  // Ids are n0, n1...: cache names may hold characters Mermaid reads as syntax.
  const id = new Map(nodes.map((n, i) => [n.name, `n${i}`]));
  const lines = ['flowchart LR'];
  for (const node of nodes) lines.push(`  ${id.get(node.name)}[${mermaidLabel([node.name, ...details(node)])}]`);
  for (const [parent, child] of edges(graph)) lines.push(`  ${id.get(parent)} --> ${id.get(child)}`);
  for (const node of nodes) {
    for (const input of [...(node.inputs ?? [])].sort()) lines.push(`  ${id.get(input)} -. inputs .-> ${id.get(node.name)}`);
  }
  const corrupt = nodes.filter((n) => n.corrupt === true).map((n) => id.get(n.name));
  if (corrupt.length > 0) {
    lines.push('  classDef corrupt stroke:#c00,stroke-width:3px');
    lines.push(`  class ${corrupt.join(',')} corrupt`);
  }
  return lines.join('\n');
}

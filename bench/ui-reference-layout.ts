// Lays out one scene (JSON on stdin: nodes with sizes, edges) with dagre or elkjs and prints
// {ms} or {error}. Run as its own process by bench/ui.ts so a library that overflows its stack
// or runs for minutes cannot take the bench down with it.

import dagre from 'dagre';
import ELK from 'elkjs/lib/elk.bundled.js';

interface SceneJson {
  nodes: { name: string; w: number; h: number }[];
  edges: { from: string; to: string }[];
}

async function main(): Promise<void> {
  const which = process.argv[2];
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const scene = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SceneJson;
  const t0 = performance.now();
  try {
    if (which === 'dagre') {
      const g = new dagre.graphlib.Graph({ multigraph: false });
      g.setGraph({ rankdir: 'TB', nodesep: 26, ranksep: 46 });
      g.setDefaultEdgeLabel(() => ({}));
      for (const n of scene.nodes) g.setNode(n.name, { width: n.w, height: n.h });
      for (const e of scene.edges) g.setEdge(e.from, e.to);
      dagre.layout(g);
    } else if (which === 'elkjs') {
      const elk = new ELK();
      await elk.layout({
        id: 'root',
        layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'DOWN' },
        children: scene.nodes.map((n) => ({ id: n.name, width: n.w, height: n.h })),
        edges: scene.edges.map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
      });
    } else {
      throw new Error(`unknown layout library '${which}' (dagre | elkjs)`);
    }
    process.stdout.write(JSON.stringify({ ms: performance.now() - t0 }));
  } catch (e) {
    const overflow = e instanceof RangeError && /call stack/i.test(e.message);
    process.stdout.write(
      JSON.stringify({
        error: overflow ? 'stack overflow' : e instanceof Error ? e.message : String(e),
        ms: performance.now() - t0,
      }),
    );
  }
}

void main();

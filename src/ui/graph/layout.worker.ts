// The layout worker: answers LayoutRequests so a big graph never blocks the page. Blocks go
// out as they are laid out — the first at once, then whatever is done every frame's worth of
// work — so the view paints the top of a big graph while the rest is computed.

import type { LayoutMessage, LayoutReply } from './layoutProtocol.ts';
import { GraphShelf } from './graphShelf.ts';
import type { LayoutChunk } from './layout.ts';
import { LayoutEngine } from './layoutEngine.ts';

/** Milliseconds of layout between progress messages: about one frame. */
const BATCH_MS = 16;

const engine = new LayoutEngine();
const shelf = new GraphShelf();
const post = (reply: LayoutReply) => (self as unknown as Worker).postMessage(reply);

self.onmessage = (ev: MessageEvent<LayoutMessage>) => {
  const { id, graph, previous, collapsed } = ev.data;
  let name = `#${graph.key}`;
  try {
    // The previous graph first: the page's shelf took them in this order.
    const prev = previous ? { graph: shelf.take(previous.graph), mapping: previous.mapping } : undefined;
    const req = { graph: shelf.take(graph), collapsed, previous: prev };
    name = `'${req.graph.name}' (${req.graph.nodes.length} nodes)`;
    const steps = engine.stream(req);
    let batch: LayoutChunk[] = [];
    let sentScene = false;
    let last = performance.now();
    for (;;) {
      const s = steps.next();
      if (s.done) {
        // The page has every block but this batch: send those, not the assembled layout.
        const { scene, layout: _layout, ...totals } = s.value;
        post({ id, kind: 'done', chunks: batch, ...(sentScene ? {} : { scene }), ...totals });
        return;
      }
      batch.push(s.value.chunk);
      const now = performance.now();
      if (!sentScene || now - last >= BATCH_MS) {
        post({ id, kind: 'progress', chunks: batch, ...(sentScene ? {} : { scene: s.value.scene }) });
        sentScene = true;
        batch = [];
        last = now;
      }
    }
  } catch (e) {
    post({
      id,
      kind: 'error',
      error: `layout of graph ${name} failed: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
};

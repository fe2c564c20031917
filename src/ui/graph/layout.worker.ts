// The layout worker: answers LayoutRequests so a big graph never blocks the page. Blocks go
// out as they are laid out — the first at once, then whatever is done every frame's worth of
// work — so the view paints the top of a big graph while the rest is computed.

import type { LayoutReply, LayoutRequest } from './layoutProtocol.ts';
import type { LayoutChunk } from './layout.ts';
import { LayoutEngine } from './layoutEngine.ts';

/** Milliseconds of layout between progress messages: about one frame. */
const BATCH_MS = 16;

const engine = new LayoutEngine();
const post = (reply: LayoutReply) => (self as unknown as Worker).postMessage(reply);

self.onmessage = (ev: MessageEvent<LayoutRequest>) => {
  const { id, ...req } = ev.data;
  try {
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
      error: `layout of graph '${req.graph.name}' (${req.graph.nodes.length} nodes) failed: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
};

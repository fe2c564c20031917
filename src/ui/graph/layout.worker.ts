// The layout worker: answers LayoutRequests so a big graph never blocks the page.

import type { LayoutReply, LayoutRequest } from './layoutProtocol.ts';
import { LayoutEngine } from './layoutEngine.ts';

const engine = new LayoutEngine();

self.onmessage = (ev: MessageEvent<LayoutRequest>) => {
  const { id, ...req } = ev.data;
  let reply: LayoutReply;
  try {
    reply = { id, ok: true, ...engine.run(req) };
  } catch (e) {
    reply = { id, ok: false, error: `layout of graph '${req.graph.name}' (${req.graph.nodes.length} nodes) failed: ${e instanceof Error ? e.message : String(e)}` };
  }
  (self as unknown as Worker).postMessage(reply);
};

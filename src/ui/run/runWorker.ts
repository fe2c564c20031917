// The page's side of the run worker (runProtocol.ts): one request per fresh worker, which ends
// with it. A slot holds the request in progress, so a newer one, or Cancel, ends its worker at once.

import type { DeltasRequest, RunReply, RunRequest, TraceRequest } from './runProtocol.ts';

export class RunWorkerSlot {
  private worker: Worker | null = null;

  /** Ends the request in progress, if any; its promise never settles. */
  stop(): void {
    this.worker?.terminate();
    this.worker = null;
  }

  /**
   * Ends the request in progress, then sends `req` to a fresh worker. `onReply` sees each reply
   * and returns the result once one completes the request (undefined: not yet); an error reply
   * rejects with `failed(message)`, a worker that does not start with an Error.
   */
  request<T>(
    req: RunRequest | DeltasRequest | TraceRequest,
    onReply: (m: Exclude<RunReply, { type: 'error' }>) => T | undefined,
    failed: (message: string) => Error = (message) => new Error(message),
  ): Promise<T> {
    this.stop();
    const w = new Worker(new URL('./run.worker.ts', import.meta.url), { type: 'module' });
    this.worker = w;
    return new Promise((resolve, reject) => {
      const end = () => {
        w.terminate();
        if (this.worker === w) this.worker = null;
      };
      w.onmessage = (e: MessageEvent<RunReply>) => {
        const m = e.data;
        if (m.type === 'error') {
          end();
          reject(failed(m.message));
          return;
        }
        const result = onReply(m);
        if (result === undefined) return;
        end();
        resolve(result);
      };
      w.onerror = (e) => {
        end();
        reject(new Error(e.message || 'the run worker failed to start'));
      };
      w.postMessage(req);
    });
  }
}

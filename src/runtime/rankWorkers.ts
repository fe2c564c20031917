// Worker mode: one worker per rank (Node worker_threads, or Web Workers in the browser), each with
// its own adapter and device. Collectives meet in a SharedArrayBuffer: each rank publishes its
// chunk in its slot, all wait at a barrier, then each reads the slots in rank order and reduces
// them with the same WGSL kernel as the single-thread mode (so the bits are the same).

import type { RunOptions, RunProgress, RunResult, TraceEvent } from './backend.ts';
import type { Plan } from './plan.ts';
import { isCollective, numelOf } from './plan.ts';
import { RunError, type RunErrorKind } from './runError.ts';
import type { HostTensor } from './hostTensor.ts';

export interface WorkerRunMessage {
  type: 'run';
  plan: Plan;
  opts: Pick<RunOptions, 'allreduce' | 'seed' | 'inputs'>;
  rank: number;
  shared: SharedArrayBuffer;
  slotBytes: number;
}
export type WorkerReply =
  | { type: 'progress'; rank: number; progress: RunProgress }
  | {
      type: 'done';
      rank: number;
      outputs: Map<string, HostTensor>;
      events: TraceEvent[];
      notes: string[];
      device: string;
    }
  | { type: 'error'; rank: number; kind: RunErrorKind; message: string; node?: string; op?: string };

/** Bytes one rank's slot needs: the largest tensor a collective moves, rounded to 8 elements. */
export function collectiveSlotBytes(plan: Plan): number {
  let most = 16;
  for (const s of plan.steps) {
    if (isCollective(s)) {
      const bp = s.x.dtype === 'f32' || s.x.dtype === 'i32' ? 4 : 2;
      most = Math.max(most, Math.ceil(numelOf(s.x.shape) / 8) * 8 * bp);
    }
  }
  return most;
}

/** Words before the slots: the barrier's arrival count and generation. */
export const CONTROL_BYTES = 64;

const PHASE_ORDER: RunProgress['phase'][] = ['plan', 'compile', 'upload', 'run', 'download'];

/**
 * One progress line for all ranks: the phase of the rank furthest behind, with done and total
 * summed over every rank (a rank past that phase counts with its last report of it, i.e. finished).
 * Nothing is reported until every rank has reported, so the totals are whole.
 */
export function combineRankProgress(
  ranks: number,
  report: (p: RunProgress) => void,
): (rank: number, p: RunProgress) => void {
  const latest: (RunProgress | null)[] = Array.from({ length: ranks }, () => null);
  const byPhase = Array.from({ length: ranks }, () => new Map<RunProgress['phase'], RunProgress>());
  return (rank, p) => {
    latest[rank] = p;
    byPhase[rank].set(p.phase, p);
    if (latest.some((q) => !q)) return;
    const phase = PHASE_ORDER[Math.min(...latest.map((q) => PHASE_ORDER.indexOf(q!.phase)))];
    let done = 0,
      total = 0;
    for (const m of byPhase) {
      const q = m.get(phase)!;
      done += q.done;
      total += q.total;
    }
    report({ phase, done, total });
  };
}

interface RankWorker {
  post(m: WorkerRunMessage): void;
  onReply(f: (m: WorkerReply) => void): void;
  onFailure(f: (e: unknown) => void): void;
  terminate(): void;
}

async function spawn(): Promise<RankWorker> {
  if (typeof process !== 'undefined' && process.versions?.node && typeof window === 'undefined') {
    const { Worker } = await import('node:worker_threads');
    const { createRequire } = await import('node:module');
    const { pathToFileURL } = await import('node:url');
    // The worker runs the TypeScript source: register tsx's loader in it first.
    const tsxDir = createRequire(import.meta.url)
      .resolve('tsx/package.json')
      .replace(/package\.json$/, '');
    const tsx = pathToFileURL(`${tsxDir}dist/esm/api/index.mjs`).href;
    const entry = new URL('./rankWorker.ts', import.meta.url).href;
    const w = new Worker(
      `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`,
      { eval: true },
    );
    // Kept for the next run, but not what keeps a CLI or a test process alive.
    w.unref();
    return {
      post: (m) => w.postMessage(m),
      onReply: (f) => w.on('message', f),
      onFailure: (f) => {
        w.on('error', f);
        w.on('exit', (c) => c && f(new Error(`rank worker exited with ${c}`)));
      },
      terminate: () => void w.terminate(),
    };
  }
  if (typeof crossOriginIsolated !== 'undefined' && !crossOriginIsolated) {
    throw new RunError(
      'input',
      'worker mode needs a SharedArrayBuffer: serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp',
    );
  }
  const w = new Worker(new URL('./rankWorker.ts', import.meta.url), { type: 'module' });
  return {
    post: (m) => w.postMessage(m),
    onReply: (f) => {
      w.onmessage = (e) => f(e.data as WorkerReply);
    },
    onFailure: (f) => {
      w.onerror = (e) => f(e);
    },
    terminate: () => w.terminate(),
  };
}

/**
 * Rank workers are kept between runs, each with its device and compiled kernels (compiling is most
 * of a small run's time, above all on SwiftShader); a failed run drops them all.
 */
interface KeptWorker {
  worker: RankWorker;
  reply: ((m: WorkerReply) => void) | null;
  fail: ((e: unknown) => void) | null;
}
let kept: KeptWorker[] = [];

async function workersFor(ranks: number): Promise<KeptWorker[]> {
  while (kept.length < ranks) {
    const k: KeptWorker = { worker: await spawn(), reply: null, fail: null };
    k.worker.onReply((m) => k.reply?.(m));
    k.worker.onFailure((e) => k.fail?.(e));
    kept.push(k);
  }
  return kept.slice(0, ranks);
}

/** Ends the kept rank workers (their devices go with them). */
export function closeRankWorkers(): void {
  for (const k of kept) k.worker.terminate();
  kept = [];
}

export async function runInWorkers(plan: Plan, opts: RunOptions): Promise<RunResult> {
  const slotBytes = collectiveSlotBytes(plan);
  const shared = new SharedArrayBuffer(CONTROL_BYTES + plan.ranks * slotBytes);
  const workers = await workersFor(plan.ranks);
  const progress = combineRankProgress(plan.ranks, (p) => opts.onProgress?.(p));
  let failed = true;
  try {
    const replies = await Promise.all(
      workers.map(
        (w, rank) =>
          new Promise<WorkerReply>((resolve, reject) => {
            w.reply = (m) => {
              if (m.type === 'progress') progress(m.rank, m.progress);
              else resolve(m);
            };
            w.fail = reject;
            w.worker.post({
              type: 'run',
              plan,
              opts: { allreduce: opts.allreduce, seed: opts.seed, inputs: opts.inputs },
              rank,
              shared,
              slotBytes,
            });
          }),
      ),
    );
    const failedReply = replies.find((r) => r.type === 'error');
    if (failedReply && failedReply.type === 'error')
      throw new RunError(failedReply.kind, `rank ${failedReply.rank} (worker): ${failedReply.message}`, {
        node: failedReply.node,
        op: failedReply.op,
      });
    failed = false;
    const done = replies as Extract<WorkerReply, { type: 'done' }>[];
    return {
      outputs: done.map((d) => d.outputs),
      trace: {
        backend: 'webgpu',
        device: done[0]?.device ?? '',
        ranks: plan.ranks,
        events: done.flatMap((d) => d.events),
        fed: plan.fed,
        notes: [...new Set(done.flatMap((d) => d.notes))],
      },
    };
  } finally {
    for (const w of workers) {
      w.reply = null;
      w.fail = null;
    }
    // A rank that failed may have left the others waiting at a barrier: start over next time.
    if (failed) closeRankWorkers();
  }
}

// The runs of every connection, one at a time on the one native worker: admission of the host
// memory their inputs and buffers take, the queue, cancellation, and the worker's replies (its
// errors named by node, a crash answered by a fresh worker).

import { WorkerFailure, type WorkerHello, type WorkerProcess, type WorkerReply } from '../workerProcess.ts';
import type { ErrorReplyFields, PreparationThread, PreparedRun } from '../preparation.ts';
import {
  inputHostBytes,
  type AgentLimits,
  type DeviceInfo,
  type ErrorCode,
} from '../../src/runtime/agentProtocol.ts';
import { send, sendError, sendReply, type Connection, type Job, type RunMessage } from './connection.ts';

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function deviceOf(h: WorkerHello): DeviceInfo {
  return { mode: h.mode, reason: h.reason, gpus: h.gpus, cuda: h.cuda, nccl: h.nccl, peer: h.peer };
}

export class RunQueue {
  private readonly queue: Job[] = [];
  private active: Job | null = null;
  /** Host bytes admitted for the inputs of every run not yet ended. */
  private admittedBytes = 0;

  constructor(
    private readonly worker: WorkerProcess,
    /** The running worker's handshake: what the agent reports as its device. */
    public hello: WorkerHello,
    private readonly thread: PreparationThread,
    private readonly limits: AgentLimits,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * A run announced on `c`, admitted with the host memory its inputs take before any of its bytes
   * is buffered; or why not (the run's body is the caller's to drop then).
   */
  admit(c: Connection, m: RunMessage): Job | { code: ErrorCode; why: string } {
    const limits = this.limits;
    if (c.receiving)
      return {
        code: 'protocol',
        why: `run '${c.receiving.id}' is still waiting for ${c.receiving.msg.inputs.length - c.receiving.tensors.length} tensors`,
      };
    if ([...c.jobs].some((j) => j.id === m.id))
      return { code: 'protocol', why: `run '${m.id}' is already in progress` };
    const waiting = this.queue.length + (this.active ? 1 : 0);
    if (waiting >= limits.maxQueuedRuns)
      return {
        code: 'busy',
        why: `${waiting} runs are queued or running; the agent takes at most ${limits.maxQueuedRuns}`,
      };
    if (c.jobs.size >= 2)
      return { code: 'busy', why: 'this connection already has 2 runs queued or running' };
    const need = inputHostBytes(m.inputs);
    if (need > limits.maxRunHostBytes)
      return {
        code: 'limits',
        why: `the run's inputs need ${mib(need)} of host memory (the bytes sent and the worker's f32 copy); this agent takes at most ${mib(limits.maxRunHostBytes)} a run`,
      };
    if (this.admittedBytes + need > limits.maxHostBytes)
      return {
        code: 'busy',
        why: `the run's inputs need ${mib(need)} of host memory and other runs hold ${mib(this.admittedBytes)} of the ${mib(limits.maxHostBytes)} this agent admits; try again when they end`,
      };
    this.admittedBytes += need;
    const j: Job = {
      conn: c,
      id: m.id,
      msg: m,
      tensors: [],
      partial: null,
      admitted: need,
      cancelled: false,
    };
    c.jobs.add(j);
    return j;
  }

  /** Gives back a run's admitted bytes and drops what it holds (once). */
  release(j: Job) {
    this.admittedBytes -= j.admitted;
    j.admitted = 0;
    j.tensors = [];
    j.partial = null;
  }

  enqueue(j: Job) {
    this.queue.push(j);
    void this.pump();
  }

  cancel(j: Job, why: string) {
    if (j.cancelled) return;
    j.cancelled = true;
    j.conn.jobs.delete(j);
    if (j.conn.receiving === j) j.conn.receiving = null;
    const q = this.queue.indexOf(j);
    if (q >= 0) {
      this.queue.splice(q, 1);
      this.thread.drop(j.msg.body);
    }
    if (this.active !== j) this.release(j);
    sendError(j.conn, 'cancelled', why, { id: j.id });
    // A run in the worker is stopped by ending the process: that frees its host and GPU memory.
    if (this.active === j) this.worker.kill();
  }

  private async pump() {
    if (this.active) return;
    const j = this.queue.shift();
    if (!j) return;
    this.active = j;
    try {
      await this.execute(j);
    } catch (e) {
      this.log(`run ${j.id} failed: ${e instanceof Error ? e.message : String(e)}`);
      sendError(
        j.conn,
        'worker',
        `the run failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
        {
          id: j.id,
        },
      );
    } finally {
      this.active = null;
      this.release(j);
      j.conn.jobs.delete(j);
      void this.pump();
    }
  }

  private async execute(j: Job) {
    const c = j.conn;
    const tensors = j.tensors;
    j.tensors = []; // transferred to the thread: the agent holds each input once
    // Applies to the next run only; the worker ignores it unless started with FUSIONLAB_WORKER_DEBUG.
    const debug = c.debug ?? undefined;
    c.debug = null;
    const prepared = await this.thread
      .prepare({
        id: j.id,
        body: j.msg.body,
        options: j.msg.options,
        inputs: j.msg.inputs,
        tensors,
        limits: this.limits,
        debug,
      })
      .catch((e: Error): ErrorReplyFields => ({ code: 'validation', message: e.message, id: j.id }));
    if ('code' in prepared) return sendReply(c, prepared);
    try {
      await this.runPrepared(j, prepared);
    } finally {
      this.thread.forget(prepared.key);
    }
  }

  /**
   * What the worker's buffers need beyond the inputs, admitted for as long as the run lasts; or
   * why the run cannot have them.
   */
  private admitWorkerBuffers(j: Job, p: PreparedRun): string | null {
    const hello = this.hello;
    if (hello?.mode === 'cpu') {
      // The CPU worker keeps every buffer in host memory, as f32.
      const slotBytes = p.slotElements * 4 * p.world;
      if (this.admittedBytes + slotBytes > this.limits.maxHostBytes)
        return `the run needs ${(slotBytes / 2 ** 20).toFixed(1)} MiB of host memory for the CPU worker's f32 buffers over ${p.world} ranks; with the inputs of admitted runs (${(this.admittedBytes / 2 ** 20).toFixed(1)} MiB) that is over the ${(this.limits.maxHostBytes / 2 ** 20).toFixed(0)} MiB this agent admits`;
      // Held while it runs, so runs announced meanwhile are admitted against what is left.
      this.admittedBytes += slotBytes;
      j.admitted += slotBytes;
    }
    if (p.world > Math.max(1, hello?.gpus.length ?? 0) && hello?.mode === 'cuda')
      return `the run asks for ${p.world} ranks; this host has ${hello.gpus.length} GPUs`;
    return null;
  }

  private async runPrepared(j: Job, p: PreparedRun) {
    const c = j.conn;
    if (j.cancelled) return;
    const refused = this.admitWorkerBuffers(j, p);
    if (refused) return sendError(c, 'limits', refused, { id: j.id });
    let lastProgress = 0;
    try {
      this.hello = await this.worker.start();
      const reply = await this.worker.request(p.request, p.payload, (i) => {
        const now = Date.now();
        if (now - lastProgress > 100) {
          lastProgress = now;
          send(c, { type: 'progress', id: j.id, done: i, total: p.steps });
        }
      });
      if (j.cancelled) return;
      if (reply.header.type === 'error') return await this.workerError(j, p, reply.header);
      await this.deliver(j, p, reply);
    } catch (e) {
      if (!(e instanceof WorkerFailure)) throw e;
      await this.workerDied(j, p, e);
    }
  }

  /** The worker's error reply, naming the node and its op; after a CUDA error, a fresh worker. */
  private async workerError(j: Job, p: PreparedRun, h: WorkerReply['header']) {
    const node = typeof h.node === 'string' ? h.node : undefined;
    const op = node ? (await this.thread.where(p.key, { node })).op : undefined;
    // A CUDA error ends the worker (its context may be poisoned): start a clean one.
    const restarted = h.fatal === true;
    if (restarted)
      await this.worker
        .stop()
        .then(() => this.worker.start())
        .then(
          (w) => {
            this.hello = w;
          },
          (e) => this.log(`worker restart failed: ${e}`),
        );
    return sendError(
      j.conn,
      'worker',
      `${node ? `node ${node}${op ? ` (${op})` : ''}: ` : ''}${String(h.message)}${restarted ? '; the worker was restarted' : ''}`,
      { id: j.id, node, op },
    );
  }

  /** The result message, built in the thread (its trace has an event per step and rank), then the outputs' frames. */
  private async deliver(j: Job, p: PreparedRun, reply: WorkerReply) {
    const c = j.conn;
    const d = await this.thread.deliver(p.key, j.id, reply.rawHeader, deviceOf(this.hello));
    if ('code' in d) return sendReply(c, d);
    if (j.cancelled || c.ws.readyState !== c.ws.OPEN) return;
    c.ws.send(d.message, { binary: false });
    for (const [offset, bytes] of d.frames)
      if (c.ws.readyState === c.ws.OPEN)
        c.ws.send(reply.payload.subarray(offset, offset + bytes), { binary: true });
  }

  /** The process died: name the node it was running, start a fresh one for the next run. */
  private async workerDied(j: Job, p: PreparedRun, e: WorkerFailure) {
    const step = e.step !== null ? await this.thread.where(p.key, { step: e.step }) : {};
    void this.worker.start().then(
      (w) => {
        this.hello = w;
        this.log('worker restarted');
      },
      (err) => this.log(`worker restart failed: ${err}`),
    );
    if (j.cancelled) return;
    sendError(
      j.conn,
      'worker',
      `${step.node ? `node ${step.node} (${step.op}): ` : ''}${e.message} while running it; the worker was restarted`,
      { id: j.id, node: step.node, op: step.op },
    );
  }

  /** The device, from the worker's handshake (starting it if it is not running). */
  async device(): Promise<DeviceInfo> {
    return deviceOf(this.hello ?? (await this.worker.start()));
  }
}

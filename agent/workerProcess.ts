// The native worker as a child process: framed requests on its stdin, framed replies on its
// stdout (u32 header length, u64 payload length, JSON header, payload). One request at a time.
// A worker that dies mid-run is reported with the step it had started, and started afresh.

import { spawn, type ChildProcess } from 'node:child_process';

export interface WorkerHello {
  type: 'hello';
  protocol: number;
  mode: 'cuda' | 'cpu';
  reason?: string;
  cuda: string | null;
  nccl: string | null;
  gpus: { name: string; memoryBytes: number; computeCapability: string }[];
  peer: boolean[][];
}

export interface WorkerReply {
  header: Record<string, unknown> & { type: string };
  payload: Buffer;
}

/** The worker died or failed; `step` is the index of the step it had started, if any. */
export class WorkerFailure extends Error {
  constructor(message: string, readonly step: number | null, readonly node: string | null = null) {
    super(message);
  }
}

export interface WorkerOptions {
  path: string;
  env?: Record<string, string>;
  /** stderr lines from the worker (diagnostics). */
  onLog?: (line: string) => void;
}

interface Pending {
  resolve: (r: WorkerReply) => void;
  reject: (e: Error) => void;
  onStep?: (i: number) => void;
  lastStep: number | null;
}

export class WorkerProcess {
  private child: ChildProcess | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private pending: Pending | null = null;
  private ready: Promise<WorkerHello> | null = null;
  hello: WorkerHello | null = null;

  constructor(private readonly opts: WorkerOptions) {}

  /** Starts the process (if not running) and returns its handshake. */
  start(): Promise<WorkerHello> {
    if (this.ready) return this.ready;
    const child = spawn(this.opts.path, [], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...this.opts.env } });
    this.child = child;
    this.buf = Buffer.alloc(0);
    child.stdout!.on('data', (d: Buffer) => this.onData(d));
    child.stderr!.on('data', (d: Buffer) => this.opts.onLog?.(d.toString().trimEnd()));
    child.stdin!.on('error', () => {});  // EPIPE when it dies: the exit handler reports it
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    child.on('error', (e) => this.onExit(child, null, null, e));
    this.ready = this.request({ type: 'hello' }).then((r) => {
      this.hello = r.header as unknown as WorkerHello;
      return this.hello;
    });
    this.ready.catch(() => { this.ready = null; });
    return this.ready;
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  /** Sends one request; resolves with the reply that ends it (result, error or hello). */
  request(header: object, payload: Buffer[] = [], onStep?: (i: number) => void): Promise<WorkerReply> {
    const child = this.child;
    if (!child || !child.stdin) return Promise.reject(new WorkerFailure('the worker is not running', null));
    if (this.pending) return Promise.reject(new WorkerFailure('the worker is busy', null));
    const json = Buffer.from(JSON.stringify(header));
    const plen = payload.reduce((a, b) => a + b.length, 0);
    const head = Buffer.alloc(12);
    head.writeUInt32LE(json.length, 0);
    head.writeBigUInt64LE(BigInt(plen), 4);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, onStep, lastStep: null };
      child.stdin!.write(head);
      child.stdin!.write(json);
      for (const p of payload) child.stdin!.write(p);
    });
  }

  /** Ends the process now (cancels a run and frees everything it held, on the GPU too). */
  kill(): void {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  /** Kills and waits for the exit, so a new worker can start on the same GPUs. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await gone;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.buf.length < 12) return;
      const hl = this.buf.readUInt32LE(0);
      const pl = Number(this.buf.readBigUInt64LE(4));
      if (this.buf.length < 12 + hl + pl) return;
      const header = JSON.parse(this.buf.subarray(12, 12 + hl).toString()) as WorkerReply['header'];
      const payload = this.buf.subarray(12 + hl, 12 + hl + pl);
      this.buf = this.buf.subarray(12 + hl + pl);
      const p = this.pending;
      if (!p) continue;
      if (header.type === 'step') {
        p.lastStep = header.i as number;
        p.onStep?.(p.lastStep);
        continue;
      }
      this.pending = null;
      p.resolve({ header, payload: Buffer.from(payload) });
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null, err?: Error): void {
    if (child !== this.child) return;
    this.child = null;
    this.ready = null;
    this.hello = null;
    const p = this.pending;
    this.pending = null;
    if (p) {
      const how = err ? err.message : signal ? `was killed by ${signal}` : `exited with code ${code}`;
      p.reject(new WorkerFailure(`the worker ${how}`, p.lastStep));
    }
  }
}

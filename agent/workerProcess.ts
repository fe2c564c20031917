// The native worker as a child process: framed requests on its stdin, framed replies on its
// stdout (u32 header length, u64 payload length, JSON header, payload). One request at a time.
// A worker that dies mid-run is reported with the step it had started, and started afresh.
// A reply is read into buffers allocated once from its frame header, so reading it takes time
// linear in its size however the pipe splits it (a 64 MiB result comes in ~1,000 chunks).

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
  /** Parsed when small; a large one (a result's trace) carries only its type, and `rawHeader` is read elsewhere. */
  header: Record<string, unknown> & { type: string };
  rawHeader: Buffer;
  payload: Buffer;
}

/** Headers up to this size are parsed here; a result's header for a large graph is megabytes. */
const PARSED_HEADER_BYTES = 64 * 1024;

/** The worker died or failed; `step` is the index of the step it had started, if any. */
export class WorkerFailure extends Error {
  constructor(
    message: string,
    readonly step: number | null,
    readonly node: string | null = null,
  ) {
    super(message);
  }
}

export interface WorkerOptions {
  path: string;
  env?: Record<string, string>;
  /** stderr lines from the worker (diagnostics). */
  onLog?: (line: string) => void;
  /** Largest reply payload accepted; a frame header announcing more ends the worker. Default 64 GiB. */
  maxReplyBytes?: number;
}

/** A reply frame being read: the fixed head, then the JSON header, then the payload. */
export class FrameReader {
  private head = Buffer.alloc(12);
  private headFill = 0;
  private json: Buffer | null = null;
  private payload: Buffer | null = null;
  private fill = 0;

  constructor(private readonly maxPayload: number) {}

  /** Feeds a chunk; calls `frame` for each completed frame. Throws on a frame over the limit. */
  push(d: Buffer, frame: (header: Buffer, payload: Buffer) => void): void {
    let i = 0;
    for (;;) {
      if (this.json === null) {
        if (i >= d.length) return;
        const n = Math.min(12 - this.headFill, d.length - i);
        d.copy(this.head, this.headFill, i, i + n);
        this.headFill += n;
        i += n;
        if (this.headFill < 12) return;
        const pl = Number(this.head.readBigUInt64LE(4));
        const hl = this.head.readUInt32LE(0);
        if (pl > this.maxPayload || hl > this.maxPayload)
          throw new Error(`a reply of ${Math.max(pl, hl)} bytes, over the limit of ${this.maxPayload}`);
        this.json = Buffer.allocUnsafe(hl);
        this.payload = Buffer.allocUnsafe(pl);
        this.fill = 0;
      }
      const json = this.json,
        payload = this.payload!;
      const total = json.length + payload.length;
      const n = Math.min(total - this.fill, d.length - i);
      // Copy across the header/payload boundary in at most two pieces.
      const toJson = Math.max(0, Math.min(n, json.length - this.fill));
      if (toJson) d.copy(json, this.fill, i, i + toJson);
      if (n > toJson) d.copy(payload, this.fill + toJson - json.length, i + toJson, i + n);
      this.fill += n;
      i += n;
      if (this.fill < total) return;
      this.json = null;
      this.payload = null;
      this.headFill = 0;
      frame(json, payload);
    }
  }
}

interface Pending {
  resolve: (r: WorkerReply) => void;
  reject: (e: Error) => void;
  onStep?: (i: number) => void;
  lastStep: number | null;
}

export class WorkerProcess {
  private child: ChildProcess | null = null;
  private reader: FrameReader;
  private pending: Pending | null = null;
  private ready: Promise<WorkerHello> | null = null;
  hello: WorkerHello | null = null;

  constructor(private readonly opts: WorkerOptions) {
    this.reader = new FrameReader(opts.maxReplyBytes ?? 64 * 2 ** 30);
  }

  /** Starts the process (if not running) and returns its handshake. */
  start(): Promise<WorkerHello> {
    if (this.ready) return this.ready;
    const child = spawn(this.opts.path, [], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...this.opts.env },
    });
    this.child = child;
    this.reader = new FrameReader(this.opts.maxReplyBytes ?? 64 * 2 ** 30);
    child.stdout!.on('data', (d: Buffer) => this.onData(child, d));
    child.stderr!.on('data', (d: Buffer) => this.opts.onLog?.(d.toString().trimEnd()));
    child.stdin!.on('error', () => {}); // EPIPE when it dies: the exit handler reports it
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    child.on('error', (e) => this.onExit(child, null, null, e));
    this.ready = this.request({ type: 'hello' }).then((r) => {
      this.hello = r.header as unknown as WorkerHello;
      return this.hello;
    });
    this.ready.catch(() => {
      this.ready = null;
    });
    return this.ready;
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  /** Sends one request (an object, or its JSON already encoded); resolves with the reply that ends it (result, error or hello). */
  request(
    header: object | Uint8Array,
    payload: Buffer[] = [],
    onStep?: (i: number) => void,
  ): Promise<WorkerReply> {
    const child = this.child;
    if (!child || !child.stdin) return Promise.reject(new WorkerFailure('the worker is not running', null));
    if (this.pending) return Promise.reject(new WorkerFailure('the worker is busy', null));
    const json = header instanceof Uint8Array ? header : Buffer.from(JSON.stringify(header));
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

  private onData(child: ChildProcess, d: Buffer): void {
    try {
      this.reader.push(d, (json, payload) => this.onFrame(json, payload));
    } catch (e) {
      // A worker that announces an impossible reply is not to be trusted with the next run.
      this.opts.onLog?.(`${(e as Error).message}; ending the worker`);
      child.kill('SIGKILL');
    }
  }

  private onFrame(json: Buffer, payload: Buffer): void {
    // Every header begins with its type ({"type":"…"), so a large one need not be parsed here.
    const header: WorkerReply['header'] =
      json.length <= PARSED_HEADER_BYTES
        ? (JSON.parse(json.toString()) as WorkerReply['header'])
        : { type: /^\{"type":"(\w+)"/.exec(json.subarray(0, 32).toString())?.[1] ?? 'unknown' };
    const p = this.pending;
    if (!p) return;
    if (header.type === 'step') {
      p.lastStep = header.i as number;
      p.onStep?.(p.lastStep);
      return;
    }
    this.pending = null;
    p.resolve({ header, rawHeader: json, payload });
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

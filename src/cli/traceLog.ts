// A TORCH_TRACE log from disk: the folder TORCH_TRACE names (one `dedicated_log_torch_trace_*.log`
// per rank) or the log itself, read in chunks so a log of hundreds of MB never sits whole in memory.

import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TorchTraceReader, isTorchTraceLog, type TorchTrace } from '../graph/artifacts/torchTrace.ts';

const CHUNK_BYTES = 4 << 20;
const natural = new Intl.Collator('en', { numeric: true });

/** The logs a path holds: itself when it is a file, else the TORCH_TRACE logs under it (rank 0 first). */
export function torchTraceLogs(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return (readdirSync(path, { recursive: true }) as string[])
    .map((p) => p.split('\\').join('/'))
    .filter(isTorchTraceLog)
    .sort(natural.compare)
    .map((p) => join(path, p));
}

/** Whether `path` is a TORCH_TRACE folder or log (a dump folder is not). */
export function isTorchTracePath(path: string): boolean {
  try {
    return isTorchTraceLog(path) || (statSync(path).isDirectory() && torchTraceLogs(path).length > 0);
  } catch {
    return false;
  }
}

export function readTorchTrace(file: string): TorchTrace {
  const reader = new TorchTraceReader();
  const decoder = new TextDecoder();
  const buf = Buffer.alloc(CHUNK_BYTES);
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      reader.push(decoder.decode(buf.subarray(0, n), { stream: true }));
    }
    reader.push(decoder.decode());
  } finally {
    closeSync(fd);
  }
  return reader.finish();
}

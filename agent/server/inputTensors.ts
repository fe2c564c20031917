// A run's input tensors arrive as binary messages after it: each whole in one message, or one
// larger than a message in chunks of exactly the message size but the last. What one message
// does to the run receiving them.

import { ownBuffer } from '../preparation.ts';
import { tensorBytes } from '../../src/runtime/agentProtocol.ts';
import type { Job } from './connection.ts';

export type TensorReceipt =
  /** The run has every tensor it announced. */
  | { kind: 'complete' }
  /** More bytes or tensors are to come. */
  | { kind: 'more' }
  /** The bytes do not fit what the run announced; the message names the input. */
  | { kind: 'refused'; message: string };

export function receiveTensorBytes(j: Job, data: Buffer, maxMessageBytes: number): TensorReceipt {
  const decl = j.msg.inputs[j.tensors.length];
  const want = tensorBytes(decl);
  const refused = (why: string): TensorReceipt => ({
    kind: 'refused',
    message: `input '${decl.name}': ${why}`,
  });
  if (!j.partial && data.length === want) {
    j.tensors.push(ownBuffer(data));
  } else {
    if (!j.partial) {
      if (data.length !== maxMessageBytes || data.length > want) {
        return refused(
          `${data.length} bytes, but ${decl.dtype}[${decl.shape}] needs ${want}${want > maxMessageBytes ? ` (sent in messages of ${maxMessageBytes} bytes but the last)` : ''}`,
        );
      }
      // Allocated at the announced size, which was admitted: pages are touched only as bytes arrive.
      j.partial = { bytes: new Uint8Array(want), filled: 0 };
    }
    const p = j.partial;
    const last = p.filled + data.length === want;
    if (p.filled + data.length > want || (!last && data.length !== maxMessageBytes)) {
      return refused(
        `a chunk of ${data.length} bytes after ${p.filled} of ${want}; chunks are ${maxMessageBytes} bytes but the last`,
      );
    }
    p.bytes.set(data, p.filled);
    p.filled += data.length;
    if (!last) return { kind: 'more' };
    j.tensors.push(p.bytes.buffer as ArrayBuffer);
    j.partial = null;
  }
  return j.tensors.length === j.msg.inputs.length ? { kind: 'complete' } : { kind: 'more' };
}

// The preparation thread's entry in the source tree: TypeScript needs the tsx loader registered
// in this thread too. (The GPU host's bundle builds this file name from preparation.ts itself.)
import { register } from 'tsx/esm/api';

register();
await import('./preparation.ts');

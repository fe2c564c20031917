// Rotary embedding, after vLLM's MatcherRotaryEmbedding (vllm/compilation/passes/fusion/
// matcher_utils.py): query and key rotated by the position's angle.
//
//   custom   auto_functionalized(_C.rotary_embedding, positions, query, key, head_size,
//            cos_sin_cache, is_neox)[1] query, [2] key
//
// The native form (RotaryEmbedding.forward_static: index_select of the cos/sin cache, the halves
// or pairs rotated, cat) is not recognized yet: a graph with the rotary custom op off shows no
// rotary occurrence.

import type { Arg, Node } from '../../ir.ts';
import type { GraphIndex } from '../../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg } from '../../call.ts';
import { ROTARY_EMBEDDING } from '../patternOps.ts';
import type { MatchRefusal, Occurrence, Recognized } from './occurrence.ts';
import { functionalizedCall, recognizer } from './occurrence.ts';

export type RotaryOp = 'rotary_embedding';
export type RotaryOutput = 'query' | 'key';

export interface RotaryOccurrence extends Occurrence<RotaryOp, RotaryOutput> {
  readonly positions: Arg;
  readonly query: Arg;
  /** null where the op rotates the query alone. */
  readonly key: Arg;
  readonly headSize: Arg;
  readonly cosSinCache: Arg;
  readonly isNeox: Arg;
}

function customRotary(ix: GraphIndex, n: Node): RotaryOccurrence | MatchRefusal | undefined {
  const query = functionalizedArg(n, 'query');
  if (query === undefined) return undefined;
  const call = functionalizedCall<RotaryOp, RotaryOutput>(ix, n, 'rotary_embedding', [
    ['query', 'query'],
    ['key', 'key'],
  ]);
  if ('reason' in call) return call;
  const arg = (name: string) => functionalizedArg(n, name) ?? null;
  return {
    ...call.occurrence,
    positions: arg('positions'),
    query,
    key: arg('key'),
    headSize: arg('head_size'),
    cosSinCache: arg('cos_sin_cache'),
    isNeox: arg('is_neox'),
  };
}

function* rotaryCandidates(ix: GraphIndex) {
  for (const n of ix.byKey.get(`${AUTO_FUNCTIONALIZED}:${ROTARY_EMBEDDING}`) ?? []) yield customRotary(ix, n);
}

/** Every rotary embedding occurrence (custom form), in graph order, and the would-be ones refused. */
export const findRotaries: (ix: GraphIndex) => Recognized<RotaryOccurrence> = recognizer(rotaryCandidates);

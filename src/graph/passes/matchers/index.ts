// The matcher layer, after vLLM's matcher_utils.py: one recognizer per vLLM op, so a pass speaks
// of ops, not of one spelling of them. vLLM's fusion patterns are written once against a
// `Matcher*` object that yields the custom op (`forward_custom`) or its torch-native
// decomposition (`forward_native`); since vLLM IR (PRs #33825 / #36823) a third spelling, the
// functional `vllm_ir.*` op, reaches the passes before VllmIRLoweringPass lowers it. A recognizer
// here finds every occurrence of its op in a graph in each of these forms (OpForm) and hands every
// pass the same thing:
//
//   occurrence.op / .form     which op, found in which spelling ('custom' | 'vllm-ir' | 'native')
//   the captured values       norm: input, residual, weight, epsilon; quant: input, scale; …
//   occurrence.outputs        the values readers read, by role (norm: normed, residual), each a
//                             value name; absent where nothing reads that result
//   occurrence.nodes          every node the occurrence consists of, in graph order (a rewrite
//                             that replaces the op removes them all)
//   occurrence.anchor         the op's call, or the native form's first node
//
// A would-be occurrence whose interior value is read from outside it is no match (Inductor's
// matcher refuses it): it comes back among `refusals`, naming the value and the node reading it.
//
// Stable API (other passes build on it): OpForm, Occurrence, MatchRefusal, Recognized;
// findNorms / NormOccurrence / NormOp / NormOutput / normsByInput; findQuants / QuantOccurrence /
// QuantOp / QuantOutput; findActivations / ActivationOccurrence; findRotaries / RotaryOccurrence
// (custom and native; vLLM IR has no rotary op). A recognizer's answer is remembered per GraphIndex and shared:
// read it, never change it.

export type { MatchRefusal, Occurrence, OpForm, Recognized } from './occurrence.ts';
export { OP_FORMS } from './occurrence.ts';
export type { NormOccurrence, NormOp, NormOutput } from './norm.ts';
export { NORM_OPS, findNorms, normsByInput } from './norm.ts';
export type { QuantOccurrence, QuantOp, QuantOutput } from './quant.ts';
export { QUANT_OPS, findQuants } from './quant.ts';
export type { ActivationOccurrence, ActivationOp, ActivationOutput } from './activation.ts';
export { findActivations } from './activation.ts';
export type { RotaryOccurrence, RotaryOp, RotaryOutput } from './rotary.ts';
export { findRotaries } from './rotary.ts';

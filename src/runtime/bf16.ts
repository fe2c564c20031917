// The host's bf16 / f16 rounding lives in the graph layer (src/graph/bf16.ts), where the op table's
// CPU bodies use it; runtime code keeps importing it from here.
export * from '../graph/bf16.ts';

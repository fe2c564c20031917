// How a plan's graph inputs are seeded: the role a lowering gives each input picks its values.

export type InputRole =
  | 'activation'
  | 'norm-weight'
  | 'weight'
  | 'bias'
  | 'router-weight'
  | 'router-bias'
  | 'embedding'
  | 'indices'
  | 'fed'
  | 'zeros'
  | 'fp4-weight';
export const INPUT_ROLES: readonly InputRole[] = [
  'activation',
  'norm-weight',
  'weight',
  'bias',
  'router-weight',
  'router-bias',
  'embedding',
  'indices',
  'fed',
  'zeros',
  // Packed NVFP4 weights (vLLM's uint8 [N, K/2], two e2m1 codes a byte): uniform bytes 0–255.
  'fp4-weight',
];

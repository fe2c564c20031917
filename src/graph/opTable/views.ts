// The plan's storages and the strided views kernels read them through.

/** Storage dtypes a plan holds (token ids and masks are i32). */
export type StorageDType = 'bf16' | 'f16' | 'f32' | 'i32';

/** A strided window onto a storage, in elements. */
export interface View {
  storage: string;
  dtype: StorageDType;
  offset: number;
  shape: number[];
  strides: number[];
}

/** Elements of a shape. */
export const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** A row-major view of a whole storage of this shape. */
export const contiguousView = (id: string, dtype: StorageDType, s: number[]): View => ({
  storage: id,
  dtype,
  shape: s,
  strides: s.map((_, d) => numel(s.slice(d + 1))),
  offset: 0,
});

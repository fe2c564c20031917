// Dynamo's own graph (TORCH_TRACE's `dynamo_output_graph`, the pre-grad graphs) calls torch at the
// Python level: `torch.nn.functional.silu(x)`, `x.view(8, 3, 4, 16)`, `a * b` on tensors, and renames
// each input once (`l_x_ = L_x_`). The reader takes them as `torch.*` / `Tensor.*` / `operator.*`
// nodes and the alias op; here each call that means a registered op becomes that op, its arguments
// put as the op takes them, and the rest stay as they are: opaque nodes named by what they call
// (`torch._C._nn.linear`), which the importer warns of once each.

import { mapArg, type Arg, type Graph, type Node } from '../ir.ts';

/** `l_x_ = L_x_`: Dynamo's rename of an input; dropped, its uses read the input. */
export const TORCH_ALIAS = 'torch_level.alias';

/** A method called on a value (`x.view(…)`) is read as `Tensor.view` with the value first. */
export const METHOD_PREFIX = 'Tensor.';

interface TorchCall {
  op: string;
  /** Positional and keyword arguments as the op takes them; unchanged when absent. */
  args?: (args: Arg[], kwargs: Record<string, Arg>) => { args: Arg[]; kwargs: Record<string, Arg> };
}

const onlyTensor: TorchCall['args'] = (args) => ({ args: args.slice(0, 1), kwargs: {} });
/** `x.view(8, 3, 4)` and `x.view((8, 3, 4))`: the sizes as one list. */
const sizes: TorchCall['args'] = (args) => {
  const [self, ...rest] = args;
  const one = rest.length === 1 ? rest[0] : undefined;
  const list = Array.isArray(one)
    ? one
    : one && typeof one === 'object' && one.kind === 'tuple'
      ? one.items
      : rest;
  return { args: [self ?? null, list], kwargs: {} };
};

const meanDims: TorchCall['args'] = ([self, dim, keep], kw) => {
  const dims = dim ?? kw.dim ?? null;
  return {
    args: [self ?? null, typeof dims === 'number' ? [dims] : dims, keep ?? kw.keepdim ?? false],
    kwargs: {},
  };
};

/**
 * Torch-level calls and the registered op each means (the op's schema in `src/graph/ops.ts`;
 * torch's own decomposition of the call into it: `torch/_refs/__init__.py`,
 * `torch/_decomp/decompositions.py`).
 */
export const TORCH_LEVEL_CALLS: Record<string, TorchCall> = Object.fromEntries(
  (
    [
      // Elementwise on one tensor: `inplace=False` and the like dropped.
      [['torch.nn.functional.silu', 'Tensor.silu'], 'aten.silu.default', onlyTensor],
      [
        ['torch.sigmoid', 'torch.nn.functional.sigmoid', 'Tensor.sigmoid'],
        'aten.sigmoid.default',
        onlyTensor,
      ],
      [['torch.rsqrt', 'Tensor.rsqrt'], 'aten.rsqrt.default', onlyTensor],
      [['torch.exp', 'Tensor.exp'], 'aten.exp.default', onlyTensor],
      [['torch.abs', 'Tensor.abs'], 'aten.abs.default', onlyTensor],
      [['torch.neg', 'Tensor.neg'], 'aten.neg.default', onlyTensor],
      [['Tensor.clone'], 'aten.clone.default', onlyTensor],
      [['Tensor.detach'], 'aten.detach.default', onlyTensor],
      // The same arguments as the op's schema.
      [['Tensor.pow', 'torch.pow'], 'aten.pow.Tensor_Scalar'],
      [['torch.mm', 'Tensor.mm'], 'aten.mm.default'],
      [['Tensor.t'], 'aten.t.default'],
      [['Tensor.unsqueeze', 'torch.unsqueeze'], 'aten.unsqueeze.default'],
      // Sizes as varargs or one sequence.
      [['Tensor.view'], 'aten.view.default', sizes],
      [['Tensor.reshape', 'torch.reshape'], 'aten.reshape.default', sizes],
      [['Tensor.permute'], 'aten.permute.default', sizes],
      // `x.mean(-1, keepdim=True)`: aten.mean.dim takes the dims as a list and keepdim third.
      [['Tensor.mean'], 'aten.mean.dim', meanDims],
      // F.embedding(input, weight, …) is aten.embedding(weight, indices).
      [
        ['torch.nn.functional.embedding'],
        'aten.embedding.default',
        ([input, weight]) => ({ args: [weight ?? null, input ?? null], kwargs: {} }),
      ],
    ] satisfies [string[], string, TorchCall['args']?][]
  ).flatMap(([calls, op, args]) => calls.map((c) => [c, { op, args }] as const)),
);

/** Python's operators on tensors (on symbolic ints they stay `operator.*`). */
const TENSOR_OPERATORS: Record<string, string> = {
  'operator.add': 'aten.add.Tensor',
  'operator.sub': 'aten.sub.Tensor',
  'operator.mul': 'aten.mul.Tensor',
  'operator.truediv': 'aten.div.Tensor',
  'operator.neg': 'aten.neg.default',
};

/** Whether a node calls torch at the Python level: `torch.*` but not `torch.ops.*`, a method, an alias. */
const isTorchLevel = (n: Node): boolean =>
  n.op === TORCH_ALIAS || n.op.startsWith(METHOD_PREFIX) || /^torch\.(?!ops\.)/.test(n.op);

/**
 * Maps the torch-level calls of a graph (and its submodules) to the registered ops they mean, in
 * place, and drops Dynamo's input aliases. A graph with no torch-level call is left as it is.
 */
export function mapTorchLevelCalls(g: Graph): Graph {
  for (const s of Object.values(g.submodules)) mapTorchLevelCalls(s);
  if (!g.nodes.some(isTorchLevel)) return g;
  const aliasOf = new Map<string, Arg>();
  const read = (a: Arg): Arg =>
    mapArg(a, (leaf) =>
      leaf && typeof leaf === 'object' && leaf.kind === 'ref' ? (aliasOf.get(leaf.name) ?? leaf) : leaf,
    );
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    n.args = n.args.map(read);
    for (const k in n.kwargs) n.kwargs[k] = read(n.kwargs[k]!);
    if (n.op === TORCH_ALIAS) {
      aliasOf.set(n.name, n.args[0] ?? null);
      continue;
    }
    const call = TORCH_LEVEL_CALLS[n.op];
    if (call) {
      const mapped = call.args ? call.args(n.args, n.kwargs) : { args: n.args, kwargs: n.kwargs };
      n.op = call.op;
      n.args = mapped.args;
      n.kwargs = mapped.kwargs;
    } else if (n.op in TENSOR_OPERATORS && n.type?.kind === 'tensor') {
      n.op = TENSOR_OPERATORS[n.op]!;
    }
    nodes.push(n);
  }
  g.nodes = nodes;
  if (g.outputs) g.outputs = g.outputs.map(read);
  return g;
}

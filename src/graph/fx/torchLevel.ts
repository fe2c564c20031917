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

/**
 * Torch-level calls and the registered op each means (the op's schema in `src/graph/ops.ts`;
 * torch's own decomposition of the call into it: `torch/_refs/__init__.py`,
 * `torch/_decomp/decompositions.py`).
 */
export const TORCH_LEVEL_CALLS: Record<string, TorchCall> = {
  'torch.nn.functional.silu': { op: 'aten.silu.default', args: onlyTensor },
  'Tensor.silu': { op: 'aten.silu.default', args: onlyTensor },
  'torch.sigmoid': { op: 'aten.sigmoid.default', args: onlyTensor },
  'torch.nn.functional.sigmoid': { op: 'aten.sigmoid.default', args: onlyTensor },
  'Tensor.sigmoid': { op: 'aten.sigmoid.default', args: onlyTensor },
  'torch.rsqrt': { op: 'aten.rsqrt.default', args: onlyTensor },
  'Tensor.rsqrt': { op: 'aten.rsqrt.default', args: onlyTensor },
  'torch.exp': { op: 'aten.exp.default', args: onlyTensor },
  'Tensor.exp': { op: 'aten.exp.default', args: onlyTensor },
  'torch.abs': { op: 'aten.abs.default', args: onlyTensor },
  'Tensor.abs': { op: 'aten.abs.default', args: onlyTensor },
  'torch.neg': { op: 'aten.neg.default', args: onlyTensor },
  'Tensor.neg': { op: 'aten.neg.default', args: onlyTensor },
  'Tensor.pow': { op: 'aten.pow.Tensor_Scalar' },
  'torch.pow': { op: 'aten.pow.Tensor_Scalar' },
  'torch.mm': { op: 'aten.mm.default' },
  'Tensor.mm': { op: 'aten.mm.default' },
  'Tensor.t': { op: 'aten.t.default' },
  'Tensor.clone': { op: 'aten.clone.default', args: onlyTensor },
  'Tensor.detach': { op: 'aten.detach.default', args: onlyTensor },
  'Tensor.unsqueeze': { op: 'aten.unsqueeze.default' },
  'torch.unsqueeze': { op: 'aten.unsqueeze.default' },
  'Tensor.view': { op: 'aten.view.default', args: sizes },
  'Tensor.reshape': { op: 'aten.reshape.default', args: sizes },
  'torch.reshape': { op: 'aten.reshape.default', args: sizes },
  'Tensor.permute': { op: 'aten.permute.default', args: sizes },
  // `x.mean(-1, keepdim=True)`: aten.mean.dim takes the dims as a list and keepdim third.
  'Tensor.mean': {
    op: 'aten.mean.dim',
    args: ([self, dim, keep], kw) => ({
      args: [
        self ?? null,
        typeof (dim ?? kw.dim) === 'number' ? [(dim ?? kw.dim) as number] : (dim ?? kw.dim ?? null),
        keep ?? kw.keepdim ?? false,
      ],
      kwargs: {},
    }),
  },
  // F.embedding(input, weight, …) is aten.embedding(weight, indices).
  'torch.nn.functional.embedding': {
    op: 'aten.embedding.default',
    args: ([input, weight]) => ({ args: [weight ?? null, input ?? null], kwargs: {} }),
  },
};

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

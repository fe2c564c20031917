"""RoPE as vLLM's passes see it: the torch-native rotary embedding and vLLM's QK-norm + RoPE test
model, through a real torch.compile (Inductor post-grad, as capture.py compiles).

    python scripts/capture/rope.py            # prints the native rotary forms (neox and GPT-J)

The native form is RotaryEmbedding.forward_static (vllm/model_executor/layers/rotary_embedding/
base.py) over ApplyRotaryEmb.forward_static (common.py): the cos/sin rows picked by index_select,
split in halves, each half of q and k rotated (neox: the two halves of the rotary dims; else the
even and odd dims), put back by cat (neox) or stack + flatten (GPT-J). The custom form is
`_C.rotary_embedding` (vllm_ops.py). fusionlab's matcher fixtures
(src/graph/passes/matchers/rotaryForms.ts) are this script's output.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vllm_ops  # noqa: E402,F401  (registers the custom ops)
from layers import RMSNorm  # noqa: E402


def apply_rotary_emb(x, cos, sin, is_neox):
    # ApplyRotaryEmb.forward_static (enable_fp32_compute False): in the model's dtype.
    cos = cos.unsqueeze(-2).to(x.dtype)
    sin = sin.unsqueeze(-2).to(x.dtype)
    if is_neox:
        x1, x2 = torch.chunk(x, 2, dim=-1)
    else:
        x1 = x[..., ::2]
        x2 = x[..., 1::2]
    o1 = x1 * cos - x2 * sin
    o2 = x2 * cos + x1 * sin
    if is_neox:
        return torch.cat((o1, o2), dim=-1)
    return torch.stack((o1, o2), dim=-1).flatten(-2)


def rotary_native(positions, query, key, head_size, rotary_dim, cos_sin_cache, is_neox):
    # RotaryEmbedding.forward_static.
    positions = positions.flatten()
    num_tokens = positions.shape[0]
    cos_sin = cos_sin_cache.index_select(0, positions)
    cos, sin = cos_sin.chunk(2, dim=-1)
    out = []
    for x in (query, key):
        shape = x.shape
        x = x.view(num_tokens, -1, head_size)
        rot = apply_rotary_emb(x[..., :rotary_dim], cos, sin, is_neox)
        out.append(torch.cat((rot, x[..., rotary_dim:]), dim=-1).reshape(shape))
    return out[0], out[1]


def rope_cache(head_dim, positions=64, dtype=torch.bfloat16):
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    freqs = torch.outer(torch.arange(positions).float(), inv)
    return torch.cat((freqs.cos(), freqs.sin()), -1).to(dtype)


class Rotary(torch.nn.Module):
    """RotaryEmbedding in the custom (forward_cuda) or native (forward_native) form."""

    def __init__(self, head_dim, is_neox, form, dtype=torch.bfloat16):
        super().__init__()
        self.head_dim, self.is_neox, self.form = head_dim, is_neox, form
        self.cos_sin_cache = torch.nn.Parameter(rope_cache(head_dim, dtype=dtype), requires_grad=False)

    def forward(self, positions, q, k):
        if self.form == "native":
            return rotary_native(positions, q, k, self.head_dim, self.head_dim, self.cos_sin_cache, self.is_neox)
        torch.ops._C.rotary_embedding(positions, q, k, self.head_dim, self.cos_sin_cache, self.is_neox)
        return q, k


class QKNormRoPETestModel(torch.nn.Module):
    """tests/compile/passes/test_qk_norm_rope_fusion.py QKNormRoPETestModel: split qkv, per-head
    RMSNorm of q and k, rotary of both, v passed through."""

    def __init__(self, heads, kv_heads, head_dim, eps, is_neox, norm="custom", rope="custom",
                 dtype=torch.bfloat16):
        super().__init__()
        self.head_dim = head_dim
        self.q_size, self.kv_size = heads * head_dim, kv_heads * head_dim
        self.q_norm = RMSNorm(head_dim, eps, dtype, norm)
        self.k_norm = RMSNorm(head_dim, eps, dtype, norm)
        self.rotary_emb = Rotary(head_dim, is_neox, rope, dtype)

    def forward(self, qkv, positions):
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = self.q_norm(q.view(*q.shape[:-1], q.shape[-1] // self.head_dim, self.head_dim)).view(q.shape)
        k = self.k_norm(k.view(*k.shape[:-1], k.shape[-1] // self.head_dim, self.head_dim)).view(k.shape)
        q, k = self.rotary_emb(positions, q, k)
        return q, k, v


class QKRoPEKVCacheTestModel(torch.nn.Module):
    """tests/compile/passes/test_rope_kvcache_fusion.py QKRoPEKVCacheTestModel: split qkv, rotary of q
    and k, then the heads views and the KV-cache update of k and v."""

    def __init__(self, heads, kv_heads, head_dim, is_neox, dtype=torch.bfloat16,
                 layer_name="model.layers.0.self_attn.attn"):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.q_size, self.kv_size = heads * head_dim, kv_heads * head_dim
        self.rotary_emb = Rotary(head_dim, is_neox, "custom", dtype)
        self.layer_name = layer_name

    def forward(self, qkv, positions):
        qkv = qkv.clone()
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q, k = self.rotary_emb(positions, q, k)
        q = q.view(-1, self.heads, self.head_dim)
        k = k.view(-1, self.kv_heads, self.head_dim)
        v = v.view(-1, self.kv_heads, self.head_dim)
        dummy = torch.ops.vllm.unified_kv_cache_update(k, v, self.layer_name)
        return q, k, v, dummy


class RotaryOnly(torch.nn.Module):
    def __init__(self, head_dim, is_neox, form):
        super().__init__()
        self.rotary_emb = Rotary(head_dim, is_neox, form)

    def forward(self, positions, q, k):
        return self.rotary_emb(positions, q, k)


def main():
    import capture
    for is_neox in (True, False):
        torch._dynamo.reset()
        torch.manual_seed(0)
        tokens, head_dim = 8, 8
        inputs = (torch.arange(tokens), torch.randn(tokens, 2 * head_dim, dtype=torch.bfloat16),
                  torch.randn(tokens, head_dim, dtype=torch.bfloat16))
        (readable, _), = capture.compile_and_check(RotaryOnly(head_dim, is_neox, "native").eval(), inputs,
                                                   True, {})
        print(f"# native rotary, is_neox={is_neox}\n{readable}")


if __name__ == "__main__":
    main()

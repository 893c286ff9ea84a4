"""The ONNX graph of the model that computes with its weights as stored (see ``core.stored``).

The graph is made by running the model's own layer loop (``llama.run_layers``, ``Block.forward``) on symbolic
values: the blocks' parts are graph-emitting stand-ins and the hooks mark graph outputs. Kernels are ONNX
Runtime's fused CPU operators, float32 activations and float32 accumulation throughout:

- ``Q4_1`` matrices run in ``com.microsoft.MatMulNBits`` (4 bits, blocks of 32, no zero-point input, so the
  kernel's own zero point 8 applies). The identity ``d·q + m = d·(q − 8) + (m + 8d)`` makes that exact in real
  arithmetic: ``y = MatMulNBits(x; q, d) + Σ_b s_b(x)·c_b`` with ``c = m + 8d`` per block and ``s_b(x)`` the
  sum of ``x`` over block ``b``: one small ``[K/32] × [K/32, N]`` product (a Gemm that also adds ``y``).
  ``Q4_0`` needs no correction. ``Q8_0`` (``w = d·q``, q int8) is split exactly into two 4-bit halves,
  ``q = 16·hi + lo``: ``w = 16d·(hi + 8 − 8) + d·(lo − 8) + 8d``, two MatMulNBits over ``x`` (one over
  ``[x, x]``, twice as wide, took 1.8 times as long here for the 49,152-row output table).
  ``accuracy_level=1`` keeps the activations float32 (level 4 would round them to int8: not the model).
- matrices that read the same input are one kernel: q|k|v and gate|up.
- ``com.microsoft.GroupQueryAttention`` does rotary positions (the model's own cos/sin tables), the causal
  softmax over the cache and the weighted sum; it returns the softmax rows (``qk_output=2``, the attention the
  panels show) and writes the new keys/values in place into the cache buffer it shares with its outputs.
- a residual sum followed by an RMSNorm is one ``SkipSimplifiedLayerNormalization`` (its second output is the
  residual stream: the ``hidden`` outputs).

Inputs: ``x [n, D]`` input embeddings, ``seqlens_k [1]`` (int32, S − 1), ``total_seq`` (int32 scalar, S),
``past_key_{l}`` / ``past_value_{l}`` ``[1, Hkv, capacity, hd]``, ``keep_{l} [H·hd]`` (each head's outputs are
multiplied by its slice: ones for the model, zeros for a knocked-out head). Outputs: ``present_key_{l}`` /
``present_value_{l}`` (the same buffers), ``attention_{l} [1, H, n, S]``, ``hidden_{l} [n, D]`` for l = 1..L,
``final_normed [n, D]``. The unembedding is a second small graph: ``normed [n, D] -> logits [n, V]``.
"""

from __future__ import annotations

import numpy as np

from explainer.core.stored import StoredMatrix, UnsupportedStorage

MSFT = "com.microsoft"
IR_VERSION = 9  # what onnxruntime 1.2x+ reads
OPSET = 17


class Graph:
    """Nodes, constants, inputs and outputs of one ONNX graph being written."""

    def __init__(self):
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._n = 0
        self._consts: dict[tuple, str] = {}

    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, arr: np.ndarray, stem: str = "c", share: str | None = None) -> str:
        from onnx import numpy_helper

        if share is not None and (share, arr.shape) in self._consts:
            return self._consts[(share, arr.shape)]
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        if share is not None:
            self._consts[(share, arr.shape)] = name
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, names=None, domain: str = "", **attrs):
        from onnx import helper

        # ``names``: per output a name, None for a fresh one, or "" for an optional output left out
        outs = [self.fresh(op_type.lower()) if n is None else n for n in (names or [None] * n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, domain=domain, **attrs))
        return outs[0] if len(outs) == 1 else outs

    def expose(self, name: str, as_name: str, elem, shape) -> str:
        """Make the value ``name`` the graph output ``as_name``: its producing node's output is renamed when
        nothing reads it yet (no copy; the value is then called ``as_name``), else an Identity node copies it.
        Returns the name to read the value by from now on."""
        self.output(as_name, elem, shape)
        node = next((n for n in reversed(self.nodes) if name in n.output), None)
        if node is not None and not any(name in n.input for n in self.nodes):
            node.output[list(node.output).index(name)] = as_name
            return as_name
        self.op("Identity", [name], names=[as_name])
        return name

    def input(self, name: str, elem, shape) -> str:
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, name: str, elem, shape) -> None:
        from onnx import helper

        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))

    def model(self, name: str):
        """The ``onnx.ModelProto``."""
        from onnx import helper

        g = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.inits)
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(MSFT, 1)]
        return helper.make_model(g, opset_imports=opsets, ir_version=IR_VERSION)


PAGE = 4096


def save(model, onnx_path, data_path) -> None:
    """Write ``model`` as ``onnx_path`` with its large constants in ``data_path`` (next to it), each at a page
    boundary: ONNX Runtime maps that file instead of copying it, so once the 4-bit kernels have packed their
    weights the file's pages are no longer resident. Both files are written atomically, the data first."""
    from onnx import TensorProto
    from onnx.external_data_helper import set_external_data

    from explainer.core.paths import atomic_write

    parts, offset = [], 0
    for t in model.graph.initializer:
        if len(t.raw_data) < PAGE:
            continue
        pad = -offset % PAGE
        parts += [bytes(pad), t.raw_data]
        set_external_data(t, data_path.name, offset + pad, len(t.raw_data))
        offset += pad + len(t.raw_data)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL

    def write_data(p):
        with open(p, "wb") as f:
            for part in parts:
                f.write(part)

    atomic_write(data_path, write_data)
    atomic_write(onnx_path, model.SerializeToString())


class Sym:
    """A tensor of the graph being built. ``a + b`` is kept as a pending sum: a norm that reads it fuses the
    addition (SkipSimplifiedLayerNormalization); anything else adds it when it needs the value."""

    def __init__(self, g: Graph, name: str | None = None, terms: tuple[Sym, Sym] | None = None):
        self.g, self._name, self._terms = g, name, terms
        self.wanted: str | None = None  # a graph output name this value should carry

    @property
    def terms(self) -> tuple[Sym, Sym]:
        """The two terms of a pending sum."""
        if self._terms is None:
            raise ValueError("a named value is not a pending sum")
        return self._terms

    def __add__(self, other: Sym) -> Sym:
        return Sym(self.g, terms=(self, other))

    @property
    def pending(self) -> bool:
        return self._name is None

    @property
    def name(self) -> str:
        if self._name is None:
            a, b = self.terms
            self._name = self.g.op("Add", [a.name, b.name], names=[self.wanted])
        return self._name

    def materialized_as(self, name: str) -> None:
        self._name = name


class GraphNorm:
    def __init__(self, g: Graph, weight: np.ndarray, eps: float):
        self.g, self.gamma, self.eps = g, g.const(np.asarray(weight, np.float32), "norm"), eps

    def __call__(self, x: Sym) -> Sym:
        g = self.g
        if x.pending:  # the residual sum and the norm in one kernel; its 4th output is the sum itself
            a, b = x.terms
            normed, total = g.op(
                "SkipSimplifiedLayerNormalization",
                [a.name, b.name, self.gamma],
                names=[None, "", "", x.wanted],
                domain=MSFT,
                epsilon=self.eps,
            )[::3]
            x.materialized_as(total)
            return Sym(g, normed)
        return Sym(g, g.op("SimplifiedLayerNormalization", [x.name, self.gamma], epsilon=self.eps, axis=-1))


def linear(g: Graph, x: Sym, mats: list[StoredMatrix]) -> Sym:
    """``x [n, K] @ Wᵀ`` for the row-wise concatenation ``W`` of ``mats`` (all of one storage kind)."""
    kinds = {m.kind for m in mats}
    if len(kinds) != 1:
        return Sym(g, g.op("Concat", [linear(g, x, [m]).name for m in mats], axis=-1))
    kind = kinds.pop()
    parts = [m.parts() for m in mats]
    cat = lambda key: np.concatenate([p[key] for p in parts])  # noqa: E731
    if kind == "f32":
        return Sym(g, g.op("MatMul", [x.name, g.const(np.ascontiguousarray(cat("w").T), "w")]))
    d, q = cat("d"), cat("q")
    nb = q.shape[1]
    K = nb * 32
    if kind == "q4_0":
        return Sym(g, nbits(g, x.name, q, d))
    if kind == "q4_1":
        y, corr = nbits(g, x.name, q, d), cat("m") + 8 * d  # [N, nb]
    elif kind == "q8_0":  # q = 16·hi + lo, hi in -8..7, lo in 0..15: two kernels over x, each K wide
        hi = np.floor_divide(q.astype(np.int16), 16)
        y_hi = nbits(g, x.name, hi + 8, 16 * d)
        y_lo = nbits(g, x.name, q.astype(np.int16) - 16 * hi, d)
        y, corr = g.op("Add", [y_hi, y_lo]), 8 * d
    else:
        raise UnsupportedStorage(f"no kernel for {kind} matrices")
    ones = np.zeros((K, nb), np.float32)
    ones[np.arange(K), np.arange(K) // 32] = 1.0
    s = g.op("MatMul", [x.name, g.const(ones, "blocksum", share="blocksum")])  # [n, nb]: block sums of x
    return Sym(g, g.op("Gemm", [s, g.const(np.ascontiguousarray(corr.T), "corr"), y]))  # s @ cᵀ + y


def nbits(g: Graph, inp: str, q: np.ndarray, d: np.ndarray) -> str:
    """``inp @ Wᵀ`` with ``W[n, 32b + j] = d[n, b]·(q[n, b, j] − 8)``, ``q`` in 0..15: one MatMulNBits."""
    q = q.astype(np.uint8)
    N, nb, _ = q.shape
    blob = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)  # weight 2i: low nibble, 2i + 1: high
    return g.op(
        "MatMulNBits",
        [inp, g.const(blob, "q4"), g.const(np.ascontiguousarray(d, np.float32).reshape(-1), "scale")],
        domain=MSFT,
        K=int(nb * 32),
        N=int(N),
        bits=4,
        block_size=32,
        accuracy_level=1,
    )


class GraphAttention:
    def __init__(self, g: Graph, tensors: dict, layer: int, cfg):
        p = f"layers.{layer}."
        self.g, self.cfg = g, cfg
        self.qkv = [tensors[p + "wq"], tensors[p + "wk"], tensors[p + "wv"]]
        self.wo = [tensors[p + "wo"]]

    def __call__(self, x: Sym, layer: int, ctx: GraphPass, hooks) -> Sym:
        g, c = self.g, self.cfg
        qkv = g.op("Unsqueeze", [linear(g, x, self.qkv).name, ctx.axis0])  # [1, n, (H + 2 Hkv) hd]
        out, _, _, probs = g.op(
            "GroupQueryAttention",
            [qkv, "", "", f"past_key_{layer}", f"past_value_{layer}", "seqlens_k", "total_seq", ctx.cos, ctx.sin],
            names=[None, f"present_key_{layer}", f"present_value_{layer}", None],
            domain=MSFT,
            num_heads=c.n_heads,
            kv_num_heads=c.n_kv_heads,
            do_rotary=1,
            rotary_interleaved=0,
            qk_output=2,
        )
        hooks.attention(layer, Sym(g, probs))
        z = hooks.head_outputs(layer, Sym(g, g.op("Squeeze", [out, ctx.axis0])))  # [n, H·hd]
        return linear(g, z, self.wo)


class GraphMLP:
    def __init__(self, g: Graph, tensors: dict, layer: int, d_ff: int):
        p = f"layers.{layer}."
        self.g, self.d_ff = g, d_ff
        self.gate_up, self.down = [tensors[p + "w_gate"], tensors[p + "w_up"]], [tensors[p + "w_down"]]

    def __call__(self, x: Sym) -> Sym:
        g = self.g
        split = g.const(np.array([self.d_ff, self.d_ff], np.int64), "split", share="split")
        gate, up = g.op("Split", [linear(g, x, self.gate_up).name, split], n_out=2, axis=-1)
        silu = g.op("QuickGelu", [gate], domain=MSFT, alpha=1.0)  # x·sigmoid(1·x): SiLU
        return linear(g, Sym(g, g.op("Mul", [silu, up])), self.down)


class GraphPass:
    """The graph's stand-in for ``llama.Pass``: the rotary tables and shared constants."""

    def __init__(self, g: Graph, cfg, rotary_tables: tuple[np.ndarray, np.ndarray]):
        self.axis0 = g.const(np.array([0], np.int64), "axis0")
        self.cos, self.sin = g.const(rotary_tables[0], "cos"), g.const(rotary_tables[1], "sin")


class _Outputs:
    """Hooks that make every layer's attention and residual a graph output."""

    def __init__(self, g: Graph, cfg):
        self.g, self.cfg = g, cfg

    def embedded(self, x):
        return x

    def attention(self, layer, weights: Sym):
        from onnx import TensorProto

        self.g.expose(weights.name, f"attention_{layer}", TensorProto.FLOAT, [1, None, "n", "S"])

    def head_outputs(self, layer, z: Sym) -> Sym:
        """Each head's outputs times its ``keep_{layer}`` input: 1 keeps them, 0 knocks the head out (the
        backend feeds ones to the clean model: a product by 1 is exact, so both are the same graph)."""
        from onnx import TensorProto

        width = self.cfg.n_heads * self.cfg.d_head
        keep = self.g.input(f"keep_{layer}", TensorProto.FLOAT, [width])
        return Sym(self.g, self.g.op("Mul", [z.name, keep]))

    def residual(self, layer, x: Sym):
        from onnx import TensorProto

        if x.pending:  # named when the next norm (or an Add) computes it
            x.wanted = f"hidden_{layer + 1}"
            self.g.output(x.wanted, TensorProto.FLOAT, ["n", None])
        else:
            x.materialized_as(self.g.expose(x.name, f"hidden_{layer + 1}", TensorProto.FLOAT, ["n", None]))
        return x


def rotary_tables(cfg) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin ``[context, hd/2]`` computed as ``llama.Rotary`` computes them (float32 angles)."""
    import torch

    from explainer.core.llama import Rotary

    rot = Rotary(cfg.d_head, cfg.rope_theta)
    freqs = torch.arange(cfg.context_length).float()[:, None] * rot.inv_freq[None, :]
    return freqs.cos().numpy(), freqs.sin().numpy()


def build_layers(cfg, tensors: dict) -> bytes:
    """The layers' graph (module docstring) from ``core.stored`` tensors; raises ``UnsupportedStorage``."""
    from onnx import TensorProto

    from explainer.core.llama import Block, run_layers

    g = Graph()
    x = Sym(g, g.input("x", TensorProto.FLOAT, ["n", cfg.d_model]))
    g.input("seqlens_k", TensorProto.INT32, [1])
    g.input("total_seq", TensorProto.INT32, [])
    kv = [1, cfg.n_kv_heads, "capacity", cfg.d_head]
    for i in range(cfg.n_layers):
        for part in ("key", "value"):
            g.input(f"past_{part}_{i}", TensorProto.FLOAT, kv)
            g.output(f"present_{part}_{i}", TensorProto.FLOAT, kv)
    ctx = GraphPass(g, cfg, rotary_tables(cfg))
    blocks = [
        Block(
            GraphNorm(g, tensors[f"layers.{i}.attn_norm"], cfg.norm_eps),
            GraphAttention(g, tensors, i, cfg),
            GraphNorm(g, tensors[f"layers.{i}.ffn_norm"], cfg.norm_eps),
            GraphMLP(g, tensors, i, cfg.d_ff),
        )
        for i in range(cfg.n_layers)
    ]
    final = run_layers(blocks, GraphNorm(g, tensors["norm"], cfg.norm_eps), x, ctx, _Outputs(g, cfg))
    g.expose(final.name, "final_normed", TensorProto.FLOAT, ["n", cfg.d_model])
    return g.model("layers")


def build_unembedding(tensors: dict):
    """The next-token statistics of ``normed [n, D]`` rows, with the output matrix (the tied embedding table) as
    stored: the engine's ``RowStats`` without a ``[n, V]`` array leaving ONNX Runtime. Inputs ``normed``,
    ``next_ids [n]`` (int64, >= 0), ``k [1]``; outputs ``lse``, ``entropy_bits``, ``next_logp`` ``[n, 1]``
    float64, ``top_ids [n, k]`` int64, ``top_probs [n, k]`` float64 (``k`` = V gives whole distributions).
    Sums over the vocabulary accumulate in float64, as ``stats.row_stats`` does."""
    from onnx import TensorProto as TP

    table = tensors.get("lm_head", tensors["embed"])
    g = Graph()
    x = Sym(g, g.input("normed", TP.FLOAT, ["n", table.shape[1]]))
    g.input("next_ids", TP.INT64, ["n"])
    g.input("k", TP.INT64, [1])
    logits = linear(g, x, [table]).name
    last = g.const(np.array([-1], np.int64), "last")
    f64 = lambda name: g.op("Cast", [name], to=TP.DOUBLE)  # noqa: E731
    m = g.op("ReduceMax", [logits], axes=[-1], keepdims=1)  # [n, 1]
    d = g.op("Sub", [logits, m])  # <= 0
    e = g.op("Exp", [d])
    s = g.op("ReduceSum", [f64(e), last], keepdims=1)  # >= 1
    log_s = g.op("Log", [s])
    lse = g.op("Add", [f64(m), log_s], names=["lse"])
    # entropy = log s − Σ e·d / s (two non-negative terms; lse − Σ p·z would cancel two numbers near 30)
    sum_ed = g.op("ReduceSum", [f64(g.op("Mul", [e, d])), last], keepdims=1)
    nats = g.op("Sub", [log_s, g.op("Div", [sum_ed, s])])
    g.op("Div", [nats, g.const(np.array(np.log(2.0)), "ln2")], names=["entropy_bits"])
    values, top_ids = g.op("TopK", [logits, "k"], names=[None, "top_ids"], axis=-1, largest=1, sorted=1)
    g.op("Exp", [g.op("Sub", [f64(values), lse])], names=["top_probs"])
    picked = g.op("GatherElements", [d, g.op("Unsqueeze", ["next_ids", last])], axis=1)
    g.op("Sub", [f64(picked), log_s], names=["next_logp"])
    for name, elem, shape in (
        ("lse", TP.DOUBLE, ["n", 1]),
        ("entropy_bits", TP.DOUBLE, ["n", 1]),
        ("next_logp", TP.DOUBLE, ["n", 1]),
        ("top_ids", TP.INT64, ["n", "k"]),
        ("top_probs", TP.DOUBLE, ["n", "k"]),
    ):
        g.output(name, elem, shape)
    return g.model("unembedding")

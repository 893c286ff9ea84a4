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
ROWS_OPSET, ROWS_IR_VERSION = 21, 10  # blocked DequantizeLinear (the many-rows unembedding)
ROWS_CHUNK = 2048  # output rows decoded at a time in the many-rows unembedding (4.7 MB of float32 for D = 576)
RUN = 64  # terms summed in float32 before the many-rows unembedding's float64 sums
# Vocabulary entries whose logits one top-k of the many-rows unembedding reads: ONNX Runtime's TopK costs ~8 µs
# per row and call at k = 64 beyond its scan, so one over 2,048 entries at a time made top-k a third of a
# 128-row call (28 ms of the table's 24 slices); over 12,288 (6 slices' logits kept, ~6 MB at 128 rows) ~9 ms.
TOPK_COLUMNS = 6 * ROWS_CHUNK


class Graph:
    """Nodes, constants, inputs and outputs of one ONNX graph being written."""

    def __init__(self, opset: int = OPSET):
        self.nodes: list = []  # onnx NodeProto, TensorProto, ValueInfoProto (the library has no type information)
        self.inits: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.opset = opset
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
        opsets = [helper.make_opsetid("", self.opset), helper.make_opsetid(MSFT, 1)]
        ir = ROWS_IR_VERSION if self.opset >= ROWS_OPSET else IR_VERSION
        return helper.make_model(g, opset_imports=opsets, ir_version=ir)


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


def decoded_slices(g: Graph, x: Sym, m: StoredMatrix, chunk: int = ROWS_CHUNK, after: list[str] | None = None):
    """``x [n, K] @ Wᵀ`` for a ``q8_0`` matrix, ``chunk`` output columns at a time: yields per slice its first
    column and its ``[n, columns]`` product. Each slice of the table is decoded to float32 inside the graph (a
    blocked ``DequantizeLinear``: ``d·q`` exactly) and multiplied in float32, so a call decodes the table once.
    Needs ``ROWS_OPSET`` and a session without graph optimizations (they could fold the decoding into a float32
    copy of the table, or fuse it with the product into a kernel that rounds the activations to int8).

    ``after``: a list the caller fills, before asking for the next slice, with the values it made from this one;
    the next slice is decoded only once they exist (through their shapes: no arithmetic on their values). The
    runtime would otherwise be free to decode every slice first, a float32 table in memory after all."""
    if m.kind != "q8_0":
        raise UnsupportedStorage(f"no decoding kernel for {m.kind} matrices")
    p = m.parts()
    N, nb, _ = p["q"].shape
    K = nb * 32
    for a in range(0, N, chunk):
        b = min(N, a + chunk)
        q = g.const(np.ascontiguousarray(p["q"][a:b].reshape(b - a, K).T), "q8")  # [K, columns] int8
        if after:
            shapes = g.op("Concat", [g.op("Shape", [v]) for v in after], axis=0)
            zero = g.op("Mul", [g.op("ReduceSum", [shapes], keepdims=1), g.const(np.zeros(1, np.int64), "i")])
            q = g.op("Reshape", [q, g.op("Add", [g.const(np.array([K, b - a], np.int64), "i"), zero])])
            after.clear()
        d = g.const(np.ascontiguousarray(p["d"][a:b].T, np.float32), "scale")  # [K/32, columns]
        w = g.op("DequantizeLinear", [q, d], axis=0, block_size=32)  # [K, columns] float32
        yield a, g.op("MatMul", [x.name, w])


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


def output_table(tensors: dict) -> StoredMatrix:
    """The output matrix: ``lm_head``, or the embedding table where the two are tied."""
    return tensors.get("lm_head", tensors["embed"])


def build_unembedding(tensors: dict):
    """The next-token statistics of ``normed [n, D]`` rows, with the output matrix (the tied embedding table) as
    stored: the engine's ``RowStats`` without a ``[n, V]`` array leaving ONNX Runtime. Inputs ``normed``,
    ``next_ids [n]`` (int64, >= 0), ``k [1]``; outputs ``lse``, ``entropy_bits``, ``next_logp`` ``[n, 1]``
    float64, ``top_ids [n, k]`` int64, ``top_probs [n, k]`` float64 (``k`` = V gives whole distributions).
    Sums over the vocabulary accumulate in float64, as ``stats.row_stats`` does. For calls of one or two rows
    (the 4-bit kernels read the table as stored); ``build_unembedding_rows`` is the graph for many rows."""
    from onnx import TensorProto as TP

    table = output_table(tensors)
    g = Graph()
    x = _statistics_inputs(g, table)
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
    _statistics_outputs(g)
    return g.model("unembedding")


def _statistics_inputs(g: Graph, table: StoredMatrix) -> Sym:
    from onnx import TensorProto as TP

    x = Sym(g, g.input("normed", TP.FLOAT, ["n", table.shape[1]]))
    g.input("next_ids", TP.INT64, ["n"])
    g.input("k", TP.INT64, [1])
    return x


def _statistics_outputs(g: Graph) -> None:
    from onnx import TensorProto as TP

    for name, elem, shape in (
        ("lse", TP.DOUBLE, ["n", 1]),
        ("entropy_bits", TP.DOUBLE, ["n", 1]),
        ("next_logp", TP.DOUBLE, ["n", 1]),
        ("top_ids", TP.INT64, ["n", "k"]),
        ("top_probs", TP.DOUBLE, ["n", "k"]),
    ):
        g.output(name, elem, shape)


def build_unembedding_rows(tensors: dict, chunk: int = ROWS_CHUNK, topk_columns: int = TOPK_COLUMNS):
    """``build_unembedding``'s statistics for calls of many rows, with a ``q8_0`` output table decoded once per
    call, ``chunk`` vocabulary entries at a time (``decoded_slices``): a call's temporaries are a few
    ``[n, chunk]`` arrays, whatever ``n``. Per slice ``c`` with maximum logit ``m_c``: ``s_c = Σ exp(z − m_c)``,
    ``t_c = Σ exp(z − m_c)·(z − m_c)``, its top k, and the next token's logit where it falls in the slice; then
    with ``M = max m_c`` and ``a_c = m_c − M``: ``s = Σ e^{a_c}·s_c`` and ``Σ e·d = Σ e^{a_c}·(t_c + a_c·s_c)``
    (the same sums over the whole vocabulary, regrouped). The top k is taken over ``topk_columns`` entries at a
    time (the logits of consecutive slices together), then over those tops.

    A slice's sums add its terms in float32 in runs of ``RUN`` (relative error < RUN·2⁻²⁴ < 4e-6, below the
    float32 logits' own rounding) and the runs in float64."""
    from onnx import TensorProto as TP

    table = output_table(tensors)
    g = Graph(ROWS_OPSET)
    x = _statistics_inputs(g, table)
    i64 = lambda v: g.const(np.array([v], np.int64), "i")  # noqa: E731
    f64 = lambda name: g.op("Cast", [name], to=TP.DOUBLE)  # noqa: E731
    last, zero = i64(-1), i64(0)
    nxt = g.op("Unsqueeze", ["next_ids", last])  # [n, 1]

    def sum64(v: str, cols: int) -> str:  # [n, cols] float32 -> [n, 1] float64
        run = next(r for r in (RUN, 32, 16, 8, 4, 2, 1) if cols % r == 0)
        shape = g.const(np.array([0, -1, run], np.int64), "runs")
        runs = g.op("ReduceSum", [g.op("Reshape", [v, shape]), last], keepdims=0)  # [n, cols / run]
        return g.op("ReduceSum", [f64(runs), last])

    sums, tops, top_ids, picked = [], [], [], []  # per slice (sums, picked) or group of slices (tops)
    done: list[str] = []
    group: list[str] = []  # the logits of the slices whose top k is not taken yet
    V = table.shape[0]
    per_group = max(1, topk_columns // chunk)
    for a, z in decoded_slices(g, x, table, chunk, after=done):
        cols = min(chunk, V - a)
        m = g.op("ReduceMax", [z, last])  # [n, 1]
        d = g.op("Sub", [z, m])  # <= 0
        e = g.op("Exp", [d])
        sums.append((m, sum64(e, cols), sum64(g.op("Mul", [e, d]), cols)))
        local = g.op("Sub", [nxt, i64(a)])
        inside = g.op("And", [g.op("GreaterOrEqual", [local, zero]), g.op("Less", [local, i64(cols)])])
        at = g.op("GatherElements", [z, g.op("Max", [g.op("Min", [local, i64(cols - 1)]), zero])], axis=1)
        picked.append(g.op("Where", [inside, at, g.const(np.zeros(1, np.float32), "zero")]))
        done += [*sums[-1][1:], picked[-1]]
        if not group:
            first = a
        group.append(z)
        if len(group) == per_group or a + cols == V:  # the group's top k: then its logits are freed
            width = a + cols - first
            zs = g.op("Concat", group, axis=-1) if len(group) > 1 else group[0]
            values, ids = g.op("TopK", [zs, g.op("Min", ["k", i64(width)])], n_out=2, axis=-1, largest=1, sorted=1)
            tops.append(values)
            top_ids.append(g.op("Add", [ids, i64(first)]))
            done += [values, top_ids[-1]]
            group = []
    maxes = [m for m, _, _ in sums]
    M = f64(g.op("Max", maxes) if len(maxes) > 1 else maxes[0])  # [n, 1]
    s_parts, ed_parts = [], []
    for m, s_c, t_c in sums:
        a_c = g.op("Sub", [f64(m), M])  # <= 0, exact in float64
        w = g.op("Exp", [a_c])
        s_parts.append(g.op("Mul", [w, s_c]))
        ed_parts.append(g.op("Mul", [w, g.op("Add", [t_c, g.op("Mul", [a_c, s_c])])]))
    total = lambda parts: g.op("Sum", parts) if len(parts) > 1 else parts[0]  # noqa: E731
    s, sum_ed = total(s_parts), total(ed_parts)  # s >= 1
    log_s = g.op("Log", [s])
    lse = g.op("Add", [M, log_s], names=["lse"])
    nats = g.op("Sub", [log_s, g.op("Div", [sum_ed, s])])
    g.op("Div", [nats, g.const(np.array(np.log(2.0)), "ln2")], names=["entropy_bits"])
    values, at = g.op("TopK", [g.op("Concat", tops, axis=-1), "k"], n_out=2, axis=-1, largest=1, sorted=1)
    g.op("GatherElements", [g.op("Concat", top_ids, axis=-1), at], names=["top_ids"], axis=1)
    g.op("Exp", [g.op("Sub", [f64(values), lse])], names=["top_probs"])
    g.op("Sub", [g.op("Sub", [f64(total(picked)), M]), log_s], names=["next_logp"])
    _statistics_outputs(g)
    return g.model("unembedding_rows")

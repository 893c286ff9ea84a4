"""The stored-weights backend: ONNX Runtime computing with the model file's own blocks (``stored_graph``).

The graphs are built once per model (seconds: no torch export) into the cache folder, next to a JSON record of
their sizes and sha256 and of what the torch model predicts on the probe sequence; a file that does not verify
is rebuilt. The backend is accepted only after it reproduced those probabilities within ``TOLERANCE`` (the
float32 path's numbers: 4-bit blocks times float32 activations are the dequantized model, to float rounding);
the record remembers the ONNX Runtime versions and CPUs where that check passed, so it runs once per both.

It runs on ONNX Runtime's CPU provider (its 4-bit kernels and grouped-query attention with a shared cache are
CPU kernels here). The key/value cache is one buffer ``[L, 2, 1, Hkv, capacity, hd]`` that the attention
kernel updates in place; it grows geometrically. Head knock-out (``knocking_out``) feeds zeros for the heads'
outputs to the same graph. A call of many tokens binds the result's arrays as outputs (IOBinding): attention
rows, residuals and the final normed rows land where the engine keeps them. A call of a few tokens (a
keystroke in a text of up to ~2,000 tokens) runs on buffers bound once per token count and context length, and
returns copies of them: binding the 61 outputs anew costs ~0.3 ms here, copying a keystroke's rows ~0.02 ms at
128 tokens (and as much as binding at ~2,000).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explainer.core.backends.base import Backend, RowStats, Step
from explainer.core.backends.memory import release_free_memory
from explainer.core.backends.onnx_backend import as_dtype
from explainer.core.errors import UserError

log = logging.getLogger(__name__)
STORED_FORMAT = 9  # bump when the graphs' inputs, outputs, kernels or files change
TOLERANCE = 1e-4  # largest probability difference from the torch model on the probe
CPU = "CPUExecutionProvider"
STATS_ROWS = 32  # rows per statistics call: ONNX Runtime's temporaries ~40 MB (16 rows: ~25 MB, ~10% slower)
SMALL_STEP = 4  # up to this many new tokens a call runs on buffers bound once (``_StepBuffers``), ...
SMALL_STEP_KEYS = 2048  # ... while new tokens × positions stay under this (copying 2 MB of rows ~ binding anew)
ROWS_PER_CALL = 128  # rows per call of the many-rows graph (its temporaries: a few [rows, ROWS_CHUNK] arrays)
_STATS = ["lse", "entropy_bits", "next_logp", "top_ids", "top_probs"]


@dataclass(frozen=True)
class StoredCache:
    buf: np.ndarray  # [L, 2, 1, Hkv, capacity, hd] float32; positions >= length are scratch
    length: int


class _StepBuffers:
    """The arrays a binding's inputs and outputs point at for a call of ``n`` new tokens over ``S`` positions. A
    few tokens' buffers are kept bound while ``n`` (and, for the attention rows, ``S``) stay the same."""

    def __init__(self, cfg, n: int):
        L, D = cfg.n_layers, cfg.d_model
        self.n, self.S = n, -1
        self.hidden = np.empty((L + 1, n, D), np.float32)  # hidden[0]: the input embeddings (the graph's x)
        self.final = np.empty((n, D), np.float32)
        self.attention = np.empty((L, 1, cfg.n_heads, n, 0), np.float32)
        self.seqlens = np.zeros(1, np.int32)
        self.total = np.zeros((), np.int32)


class _OneRow:
    """A binding of the one-row statistics graph to buffers of its own (a keystroke's row), for ``k`` top ids."""

    def __init__(self, session, d_model: int, k: int):
        self.k = k
        self.normed = np.empty((1, d_model), np.float32)
        self.next_ids = np.zeros(1, np.int64)
        self.top_k = np.array([k], np.int64)
        self.out: dict[str, np.ndarray] = {name: np.empty((1, 1), np.float64) for name in _STATS[:3]}
        self.out["top_ids"], self.out["top_probs"] = np.empty((1, k), np.int64), np.empty((1, k), np.float64)
        self.binding = b = session.io_binding()
        inputs: dict[str, np.ndarray] = {"normed": self.normed, "next_ids": self.next_ids, "k": self.top_k}
        for name, a in inputs.items():
            b.bind_input(name, "cpu", 0, a.dtype.type, list(a.shape), a.ctypes.data)
        for name, a in self.out.items():
            b.bind_output(name, "cpu", 0, a.dtype.type, list(a.shape), a.ctypes.data)


GRAPHS = ("layers", "unembedding", "unembedding-rows")
OPTIONAL = ("unembedding-rows",)  # made only for an output table with a faster way for many rows (Q8_0)


def _required(files: dict[str, Path]) -> dict[str, Path]:
    """The files of ``graph_paths`` every record has (all but the ``OPTIONAL`` graphs')."""
    return {k: p for k, p in files.items() if k.removesuffix("-data") not in OPTIONAL}


def graph_paths(identity: str) -> tuple[dict[str, Path], Path]:
    """Per graph its files (``{name}`` .onnx and ``{name}-data`` constants), and the record, in the cache
    folder for ``identity``. The ``OPTIONAL`` graphs exist where the record lists them."""
    from explainer.core.paths import cache_dir

    d = cache_dir("onnx")
    stem = f"{identity[:26]}-stored{STORED_FORMAT}"
    files = {}
    for g in GRAPHS:
        files[g], files[f"{g}-data"] = d / f"{stem}-{g}.onnx", d / f"{stem}-{g}.data"
    return files, d / f"{stem}.json"


def cached_graphs(identity: str) -> dict | None:
    """The record of verified graphs for ``identity`` (``paths``: the graph files), or None."""
    from explainer.core.paths import read_regular_text, remove_older_formats, sha256_file

    files, meta_path = graph_paths(identity)
    needed = _required(files)
    if not (meta_path.is_file() and all(p.is_file() for p in needed.values())):
        return None
    try:
        meta = json.loads(read_regular_text(meta_path))
        files = {k: p for k, p in files.items() if k in needed or k in meta["files"]}
        for key, p in files.items():
            if not p.is_file() or meta["files"][key] != [p.stat().st_size, sha256_file(p)]:
                log.warning("stored-weights graph %s failed verification; rebuilding", p.name)
                return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("stored-weights record %s unreadable (%s); rebuilding", meta_path.name, e)
        return None
    if meta.get("identity") != identity:
        return None
    remove_older_formats(meta_path.parent, identity[:26], "stored", STORED_FORMAT)
    return {**meta, "paths": files}


def build_graphs(identity: str, cfg, tensors: dict, probe: dict) -> dict:
    """Write the graphs for ``identity`` (atomically) with their record; ``probe``: ``probe_reference`` of the
    torch model. Raises ``UnsupportedStorage`` for matrices without a kernel."""
    from explainer.core.backends.stored_graph import (
        build_layers,
        build_unembedding,
        build_unembedding_rows,
        output_table,
        save,
    )
    from explainer.core.paths import atomic_write, remove_older_formats, sha256_file

    files, meta_path = graph_paths(identity)
    save(build_layers(cfg, tensors), files["layers"], files["layers-data"])
    save(build_unembedding(tensors), files["unembedding"], files["unembedding-data"])
    if output_table(tensors).kind == "q8_0":
        save(build_unembedding_rows(tensors), files["unembedding-rows"], files["unembedding-rows-data"])
    else:
        files = _required(files)
    sums = {key: [p.stat().st_size, sha256_file(p)] for key, p in files.items()}
    meta = {"identity": identity, "format": STORED_FORMAT, "files": sums, "probe": probe}
    atomic_write(meta_path, json.dumps(meta, indent=1).encode())
    remove_older_formats(meta_path.parent, identity[:26], "stored", STORED_FORMAT)
    return {**meta, "paths": files}


def _runtime_key() -> str:
    """What the probe's outcome depends on besides the graphs: ONNX Runtime's version and the CPU (its kernels
    differ by instruction set)."""
    import onnxruntime as ort

    from explainer.core.devices import cpu_features

    name, flags = cpu_features()
    return f"onnxruntime {ort.__version__} | {' '.join((name, *flags))}"


def verified_here(record: dict) -> bool:
    """True when these graphs already reproduced the probe with this ONNX Runtime on this CPU (the check then
    need not run at every start: same graphs, same kernels, same numbers)."""
    return _runtime_key() in record.get("verified", [])


def remember_verified(identity: str, record: dict) -> None:
    from explainer.core.paths import atomic_write

    _, meta_path = graph_paths(identity)
    meta = {k: v for k, v in record.items() if k != "paths"}
    meta["verified"] = sorted(set(meta.get("verified", [])) | {_runtime_key()})[-8:]
    try:
        atomic_write(meta_path, json.dumps(meta, indent=1).encode())
    except OSError as e:  # a read-only cache: the check runs again next time
        log.info("could not note the verification: %s", e)


class StoredBackend(Backend):
    name = "stored"

    def __init__(self, record: dict, cfg, embedding: np.ndarray, threads: int | None = None):
        import onnxruntime as ort

        from explainer.core.backends.onnx_backend import _session_options, threads_from_env

        self.cfg, self.embedding = cfg, embedding  # [V, D]: input embeddings are looked up on the host
        self.threads = threads or threads_from_env()
        import threading

        options = _session_options(ort, self.threads, prepack=True)
        paths, made = record["paths"], {}
        self.graph_files = {name: Path(paths[name]) for name in GRAPHS if name in paths}

        def unembedding():  # the sessions prepare (pack their kernels) at once: ~0.1-0.2 s of every start
            try:
                made["u"] = ort.InferenceSession(str(paths["unembedding"]), options, providers=[CPU])
                if "unembedding-rows" in paths:
                    plain = _session_options(ort, self.threads)
                    # no graph optimizations: they could fold the table's decoding into a float32 copy of it,
                    # or fuse it with the product into a kernel that rounds the activations to int8
                    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                    # its own arena: each call allocates and frees the same few MB per slice of the table, and
                    # fresh pages from the system for each (after the heap was trimmed) cost up to 3 ms a slice
                    plain.enable_cpu_mem_arena = True
                    rows = made["rows"] = ort.InferenceSession(str(paths["unembedding-rows"]), plain, providers=[CPU])
                    # its first call costs ~50 ms more (the table's pages, allocations): here, not in the first picture
                    feed = {"normed": np.zeros((3, cfg.d_model), np.float32), "next_ids": np.zeros(3, np.int64)}
                    rows.run(_STATS, {**feed, "k": np.array([1], np.int64)})
            except Exception as e:  # noqa: BLE001 - re-raised below, in the caller's thread
                made["error"] = e

        helper = threading.Thread(target=unembedding, name="explainer-session")
        helper.start()
        try:
            self.session = ort.InferenceSession(str(paths["layers"]), options, providers=[CPU])
        finally:
            helper.join()
        if "error" in made:
            raise made["error"]
        self.unembedding = made["u"]
        self.unembedding_rows = made.get("rows")  # the session for calls of more than 2 rows, or None
        self.provider = CPU
        self._binding: Any = None  # an onnxruntime IOBinding (the library has no type information)
        self._bound: np.ndarray | None = None  # the cache buffer the binding's past/present point at
        self._small: _StepBuffers | None = None  # what the binding's other inputs and outputs point at, if kept
        self._one_row: _OneRow | None = None
        self._rotary_rows = cfg.context_length
        self._keep = np.ones((cfg.n_layers, cfg.n_heads * cfg.d_head), np.float32)  # the graph's keep_{l} inputs

    def knocking_out(self, heads: tuple[tuple[int, int], ...]) -> StoredBackend:
        """The same sessions, with ``heads``' slices of the ``keep`` inputs zero (and a binding of its own)."""
        view = copy.copy(self)
        view.knocked_out = tuple(heads)
        view._binding = view._bound = view._small = view._one_row = None
        view._keep = np.ones_like(self._keep)
        hd = self.cfg.d_head
        for layer, head in heads:
            view._keep[layer, head * hd : (head + 1) * hd] = 0.0
        return view

    @property
    def label(self) -> str:
        return "stored (ONNX Runtime, weights as stored)"

    def forward(self, ids: np.ndarray, cache: StoredCache | None, attention_dtype=np.float32) -> Step:
        c, L = self.cfg, self.cfg.n_layers
        ids = np.asarray(ids, np.int64)
        P, n = self.cache_length(cache), int(ids.shape[0])
        S = P + n
        if S > self._rotary_rows:
            raise UserError(f"The text is longer than the model's context of {self._rotary_rows} tokens.")
        buf = cache.buf if cache is not None else None  # a new pass never overwrites a cache still in use
        if buf is None or buf.shape[4] < S:
            cap = max(256, -(-int(S * 1.25) // 128) * 128)
            grown = np.empty((L, 2, 1, c.n_kv_heads, cap, c.d_head), np.float32)
            if buf is not None and P:
                grown[..., :P, :] = buf[..., :P, :]
            buf = grown
        b = self._bind_cache(buf)
        keep = n <= SMALL_STEP and n * S <= SMALL_STEP_KEYS
        o = self._step_buffers(b, n, S, keep)
        np.take(self.embedding, ids, axis=0, out=o.hidden[0])
        o.seqlens[0], o.total[()] = S - 1, S
        self.session.run_with_iobinding(b)
        hidden, final, attention = o.hidden, o.final, as_dtype(o.attention[:, 0], attention_dtype)
        if keep:  # the next call writes into these buffers: the result gets copies
            hidden, final = hidden.copy(), final.copy()
            attention = attention.copy() if np.may_share_memory(attention, o.attention) else attention
        return Step(hidden, final, attention, StoredCache(buf, S))

    def _step_buffers(self, b, n: int, S: int, keep: bool) -> _StepBuffers:
        """The arrays bound on ``b`` for ``n`` new tokens over ``S`` positions. ``keep``: the kept ones, bound here
        only where ``n`` or ``S`` changed; else new ones for this call alone (and nothing is kept)."""
        c, L = self.cfg, self.cfg.n_layers
        o = self._small if keep else None
        if o is None or o.n != n:
            o = _StepBuffers(c, n)
            b.bind_input("x", "cpu", 0, np.float32, [n, c.d_model], o.hidden[0].ctypes.data)
            b.bind_input("seqlens_k", "cpu", 0, np.int32, [1], o.seqlens.ctypes.data)
            b.bind_input("total_seq", "cpu", 0, np.int32, [], o.total.ctypes.data)
            for li in range(L):
                b.bind_output(f"hidden_{li + 1}", "cpu", 0, np.float32, [n, c.d_model], o.hidden[li + 1].ctypes.data)
            b.bind_output("final_normed", "cpu", 0, np.float32, [n, c.d_model], o.final.ctypes.data)
        if o.S != S:
            o.attention, o.S = np.empty((L, 1, c.n_heads, n, S), np.float32), S
            for li in range(L):
                ptr = o.attention[li].ctypes.data
                b.bind_output(f"attention_{li}", "cpu", 0, np.float32, [1, c.n_heads, n, S], ptr)
        self._small = o if keep else None  # (not kept: the names are bound to this call's arrays)
        return o

    def _bind_cache(self, buf: np.ndarray):
        """The IOBinding with every layer's past and present bound to ``buf`` (rebound only when it changes)."""
        if self._binding is None or self._bound is not buf:
            c = self.cfg
            self._binding, self._bound, self._small = self.session.io_binding(), buf, None
            shape = [1, c.n_kv_heads, buf.shape[4], c.d_head]
            for li in range(c.n_layers):
                for j, part in enumerate(("key", "value")):
                    ptr = buf[li, j].ctypes.data
                    self._binding.bind_input(f"past_{part}_{li}", "cpu", 0, np.float32, shape, ptr)
                    self._binding.bind_output(f"present_{part}_{li}", "cpu", 0, np.float32, shape, ptr)
                keep = self._keep[li]
                self._binding.bind_input(f"keep_{li}", "cpu", 0, np.float32, list(keep.shape), keep.ctypes.data)
        return self._binding

    def probabilities(self, normed: np.ndarray) -> np.ndarray:
        """``[n, V]`` next-token probabilities (every id is in the top V)."""
        V = self.embedding.shape[0]
        st = self.row_stats(normed, np.full(len(normed), -1), V)
        p = np.empty((len(normed), V), np.float64)
        np.put_along_axis(p, st.top_ids, st.top_probs.astype(np.float64), axis=-1)
        return p

    def row_stats(self, normed: np.ndarray, next_ids: np.ndarray, k: int) -> RowStats:
        """The next-token statistics of ``normed [n, D]`` (``next_ids`` -1: no next token). One or two rows (a
        keystroke; one that changed a token's ending) run row by row in the graph with the 4-bit kernels, which
        multiply one row by the table as stored (~3.5 ms here) but unpack the whole table for more. More rows run
        in the many-rows graph, ``ROWS_PER_CALL`` at a time, which decodes the table once per call (~15 ms, then
        ~0.5 ms a row); without one (an output table not stored as Q8_0), in calls of ``STATS_ROWS`` rows of the
        first graph, half as many for long texts (whose results already hold most of the memory)."""
        n = len(normed)
        out = RowStats.empty(n, k)
        if n <= 2:
            return self._row_by_row(normed, next_ids, out, k)
        kk = np.array([k], np.int64)
        if self.unembedding_rows is not None:
            session, rows = self.unembedding_rows, ROWS_PER_CALL
        else:
            session, rows = self.unembedding, STATS_ROWS if n <= 256 else STATS_ROWS // 2
        for a in range(0, n, rows):
            b = min(n, a + rows)
            nxt = np.asarray(next_ids[a:b], np.int64)
            feed = {"normed": np.ascontiguousarray(normed[a:b], np.float32), "next_ids": np.maximum(nxt, 0), "k": kk}
            lse, ent, nlp, top_ids, top_p = session.run(_STATS, feed)
            out.lse[a:b], out.entropy_bits[a:b] = lse[:, 0], ent[:, 0]
            out.top_ids[a:b], out.top_probs[a:b] = top_ids, top_p
            out.next_logp[a:b] = np.where(nxt >= 0, nlp[:, 0], np.nan)
            if n > 256:  # a long text: hand each call's temporaries back (they fragment the heap)
                release_free_memory()
        return out

    def _row_by_row(self, normed: np.ndarray, next_ids: np.ndarray, out: RowStats, k: int) -> RowStats:
        """``row_stats`` of a row or two, one at a time in the one-row graph, on buffers bound once per ``k``."""
        o = self._one_row
        if o is None or o.k != k:
            o = self._one_row = _OneRow(self.unembedding, self.cfg.d_model, k)
        for i in range(len(normed)):
            o.normed[0] = normed[i]
            nxt = int(next_ids[i])
            o.next_ids[0] = max(nxt, 0)
            self.unembedding.run_with_iobinding(o.binding)
            out.lse[i], out.entropy_bits[i] = o.out["lse"][0, 0], o.out["entropy_bits"][0, 0]
            out.top_ids[i], out.top_probs[i] = o.out["top_ids"][0], o.out["top_probs"][0]
            out.next_logp[i] = o.out["next_logp"][0, 0] if nxt >= 0 else np.nan
        return out

    def kernel_steps(self) -> dict[str, tuple[Callable[[], None], int]]:
        """The four-bit kernels of a one-token step alone, to time: per graph (``layers``, ``unembedding``: the one-row
        statistics) a call that runs every ``MatMulNBits`` of it once, on these sessions' threads, with their own
        weights (prepacked as in the real graphs) and random activations (a kernel's time does not depend on its
        values), and how many kernels that is. What a keystroke costs at least with these kernels."""
        import onnxruntime as ort

        from explainer.core.backends.onnx_backend import _session_options

        options = _session_options(ort, self.threads, prepack=True)
        rng = np.random.default_rng(0)
        steps: dict[str, tuple[Callable[[], None], int]] = {}
        for name in ("layers", "unembedding"):
            model, kernels = _kernels_only(self.graph_files[name])
            session = ort.InferenceSession(model, options, providers=[CPU])
            binding = session.io_binding()
            arrays = []  # the bound arrays: kept with the call that uses them
            for inp in session.get_inputs():
                a = rng.standard_normal(inp.shape).astype(np.float32)
                binding.bind_input(inp.name, "cpu", 0, np.float32, list(a.shape), a.ctypes.data)
                arrays.append(a)
            for o in session.get_outputs():
                a = np.empty(o.shape, np.float32)
                binding.bind_output(o.name, "cpu", 0, np.float32, list(a.shape), a.ctypes.data)
                arrays.append(a)
            steps[name] = (functools.partial(_run_bound, session, binding, arrays), kernels)
        return steps

    def cache_length(self, cache: StoredCache | None) -> int:
        return 0 if cache is None else cache.length

    def truncate(self, cache: StoredCache, n: int) -> StoredCache:
        return StoredCache(cache.buf, min(n, cache.length))


def _run_bound(session, binding, _arrays) -> None:
    """One call of ``session`` on ``binding`` (``_arrays``: the arrays bound to it, kept alive with the call)."""
    session.run_with_iobinding(binding)


def _kernels_only(path: Path) -> tuple[bytes, int]:
    """The graph at ``path`` reduced to its ``MatMulNBits`` nodes, each reading a one-row input of its width (one
    input per width, shared) and writing its own output: the serialized model and the number of kernels."""
    import onnx
    from onnx import TensorProto, helper

    from explainer.core.backends.stored_graph import MSFT

    model = onnx.load(str(path))  # with its weights (the external data next to it)
    kernels = [n for n in model.graph.node if n.op_type == "MatMulNBits" and n.domain == MSFT]
    attr = lambda node, key: next(a.i for a in node.attribute if a.name == key)  # noqa: E731
    widths: set[int] = set()
    outputs = []
    for n in kernels:
        K, N = attr(n, "K"), attr(n, "N")
        widths.add(K)
        n.input[0] = f"row_{K}"
        outputs.append(helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, [1, N]))
    used = {name for n in kernels for name in n.input}
    graph = helper.make_graph(
        kernels,
        "kernels",
        [helper.make_tensor_value_info(f"row_{K}", TensorProto.FLOAT, [1, K]) for K in sorted(widths)],
        outputs,
        [t for t in model.graph.initializer if t.name in used],
    )
    reduced = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    return reduced.SerializeToString(), len(kernels)

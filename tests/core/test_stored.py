"""The stored-weights backend on tiny models: blocks decoded exactly, kernels exact to float rounding, the whole
model equal to torch (a Q4_1/Q8_0 GGUF and an in-memory float32 model), incremental updates exact, caching,
and fallbacks with a notice."""

from __future__ import annotations

import numpy as np
import pytest

from explainer.core import stored
from explainer.core.engine import TINY_CONFIG, Engine
from explainer.core.llama import random_weights

from .test_backends import TEXTS, assert_probabilities_close, tiny_engine
from .test_incremental import run_sequence

gguf = pytest.importorskip("gguf")
pytest.importorskip("onnxruntime")
STORED_TOL = 1e-4  # probabilities: the float32 path's numbers to float rounding


def _quantized(kind: str, shape=(48, 96), seed=0):
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    qtype = gguf.GGMLQuantizationType[kind]
    data = gguf.quants.quantize(w, qtype)
    return stored.StoredMatrix(kind.lower(), data), gguf.quants.dequantize(data, qtype).reshape(shape)


@pytest.mark.parametrize("kind", ["Q4_0", "Q4_1", "Q8_0"])
def test_blocks_decode_exactly_as_gguf_py(kind):
    m, ref = _quantized(kind)
    assert m.shape == ref.shape
    np.testing.assert_array_equal(m.dequantize(), ref)
    order = np.random.default_rng(1).permutation(ref.shape[0])
    np.testing.assert_array_equal(m.permuted(order).dequantize(), ref[order])


@pytest.mark.parametrize("kind", ["Q4_0", "Q4_1", "Q8_0", "F32"])
def test_stored_kernel_equals_the_float32_product(kind):
    import onnxruntime as ort
    from onnx import TensorProto

    from explainer.core.backends.stored_graph import Graph, Sym, linear

    if kind == "F32":
        w = np.random.default_rng(0).standard_normal((48, 96)).astype(np.float32)
        m, ref = stored.from_array(w), w
    else:
        m, ref = _quantized(kind)
    g = Graph()
    x = Sym(g, g.input("x", TensorProto.FLOAT, ["n", 96]))
    g.expose(linear(g, x, [m, m.permuted(np.arange(47, -1, -1))]).name, "y", TensorProto.FLOAT, ["n", 96])
    sess = ort.InferenceSession(g.model("t").SerializeToString(), providers=["CPUExecutionProvider"])
    xs = np.random.default_rng(2).standard_normal((5, 96)).astype(np.float32)
    got = sess.run(None, {"x": xs})[0]
    w = np.concatenate([ref, ref[::-1]]).astype(np.float64)
    exact = xs.astype(np.float64) @ w.T
    # the textbook bound of a float32 dot product of length K (twice: the Q8_0 kernel sums two halves)
    bound = 2 * 96 * np.finfo(np.float32).eps * (np.abs(xs).astype(np.float64) @ np.abs(w).T)
    assert (np.abs(got - exact) <= bound).all()
    assert np.abs(got - exact).max() < 1e-4


def test_decoded_slices_equal_the_float32_product_and_decode_one_slice_at_a_time():
    """The many-rows unembedding's kernel: a Q8_0 table decoded inside the graph slice by slice (uneven slices
    here), each slice's product exact to float32 rounding, under the session options the backend uses (graph
    optimizations would fuse the decoding into a kernel that rounds the activations to int8: errors ~1e-3)."""
    import onnxruntime as ort
    from onnx import TensorProto

    from explainer.core.backends.stored_graph import ROWS_OPSET, Graph, Sym, decoded_slices

    m, ref = _quantized("Q8_0", shape=(50, 96))
    g, done = Graph(ROWS_OPSET), []
    x = Sym(g, g.input("x", TensorProto.FLOAT, ["n", 96]))
    starts = []
    for a, z in decoded_slices(g, x, m, chunk=16, after=done):
        starts.append(a)
        done.append(g.expose(z, f"y{a}", TensorProto.FLOAT, ["n", None]))
    assert starts == [0, 16, 32, 48]
    # each slice after the first waits for what was made from the one before (through shapes only)
    reshapes = [n for n in g.nodes if n.op_type == "Reshape"]
    assert len(reshapes) == 3
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(g.model("t").SerializeToString(), so, providers=["CPUExecutionProvider"])
    xs = np.random.default_rng(2).standard_normal((7, 96)).astype(np.float32)
    got = np.concatenate(sess.run([f"y{a}" for a in starts], {"x": xs}), axis=1)
    exact = xs.astype(np.float64) @ ref.astype(np.float64).T
    bound = 96 * np.finfo(np.float32).eps * (np.abs(xs).astype(np.float64) @ np.abs(ref.astype(np.float64)).T)
    assert got.shape == (7, 50) and (np.abs(got - exact) <= bound).all()


# four slices (the last of 2 entries) with the top k taken per slice, per two (16 + 16, 16 + 2), per three
# (48, then 2) or over all four; or one slice
@pytest.mark.parametrize("chunk, topk_columns", [(16, 16), (16, 32), (16, 48), (16, 64), (64, 64)])
def test_many_rows_statistics_equal_float64_ones(chunk, topk_columns):
    """The many-rows statistics graph on a 50-entry Q8_0 table: the log-sum-exp, entropy, top-k and the next
    token's log-probability of numpy's float64 softmax of the same logits, with every id as the next token in
    turn (each slice, its first and last entry) and k larger than a slice."""
    import onnxruntime as ort

    from explainer.core.backends.stored_graph import build_unembedding_rows

    m, ref = _quantized("Q8_0", shape=(50, 96), seed=4)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    model = build_unembedding_rows({"embed": m}, chunk=chunk, topk_columns=topk_columns).SerializeToString()
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    xs = 0.5 * np.random.default_rng(5).standard_normal((50, 96)).astype(np.float32)
    nxt, k = np.arange(50, dtype=np.int64), 20
    names = ["lse", "entropy_bits", "next_logp", "top_ids", "top_probs"]
    lse, ent, nlp, top_ids, top_p = sess.run(names, {"normed": xs, "next_ids": nxt, "k": np.array([k])})
    z = xs.astype(np.float64) @ ref.astype(np.float64).T
    want_lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    logp = z - want_lse[:, None]
    np.testing.assert_allclose(lse[:, 0], want_lse, atol=1e-5)
    np.testing.assert_allclose(ent[:, 0], -(np.exp(logp) * logp).sum(1) / np.log(2), atol=1e-5)
    np.testing.assert_allclose(nlp[:, 0], logp[np.arange(50), nxt], atol=1e-5)
    order = np.argsort(-z, axis=1, kind="stable")[:, :k]
    assert (top_ids == order).all()
    np.testing.assert_allclose(top_p, np.take_along_axis(np.exp(logp), order, 1), atol=1e-6)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, bundled_gguf, module_cache_folder):
    from tests.gguf_factory import write_tiny_llama

    path = tmp_path_factory.mktemp("stored") / "tiny-q4.gguf"
    return write_tiny_llama(path, TINY_CONFIG, random_weights(TINY_CONFIG, 5), bundled_gguf, "llama", "Q4_1", "Q8_0")


@pytest.fixture(scope="module")
def stored_q4(tiny_gguf):
    eng = Engine(tiny_gguf, device="cpu", backend="stored")
    assert eng.backend == "stored", eng.notice
    return eng


@pytest.fixture(scope="module")
def torch_q4(tiny_gguf):
    return Engine(tiny_gguf, device="cpu", backend="torch")


@pytest.mark.parametrize("text", TEXTS)
def test_q4_model_equals_torch(stored_q4, torch_q4, text):
    a, b = stored_q4.analyze(text, incremental=False), torch_q4.analyze(text, incremental=False)
    assert a.backend == "stored" and b.backend == "torch"
    assert_probabilities_close(a, b, STORED_TOL)
    assert (a.top_ids[:, :3] == b.top_ids[:, :3]).all()


@pytest.mark.parametrize("heads", [((0, 0),), ((0, 2), (1, 1), (1, 3))])
def test_q4_knock_out_equals_torch(stored_q4, torch_q4, heads):
    """Heads knocked out in the stored-weights graph: the torch model's knocked-out numbers, within the stored
    tolerance (the 4-bit blocks as stored on both sides)."""
    for text in TEXTS:
        a = stored_q4.analyze(text, ablated=heads, incremental=False)
        b = torch_q4.analyze(text, ablated=heads, incremental=False)
        assert a.backend == "stored" and b.backend == "torch" and a.ablated == b.ablated == heads
        assert_probabilities_close(a, b, STORED_TOL)
        np.testing.assert_allclose(a.attention.full(), b.attention.full(), atol=1e-4)
        clean = stored_q4.analyze(text, incremental=False)
        assert not np.allclose(a.top_probs, clean.top_probs, atol=1e-3)  # the heads mattered


def test_q4_incremental_equals_full_recompute(stored_q4):
    steps = [("append_char", c) for c in " and the dog"] + [("backspace", 3), ("insert", 0.3, "big "), ("empty",)]
    run_sequence(stored_q4, TEXTS[1], steps)


def test_long_text_grows_the_cache_and_runs_in_chunks(stored_q4, torch_q4):
    text = "The river bank was quiet in the early morning. " * 40  # > 256 tokens: cache growth and float16 rows
    a = stored_q4.analyze(text, incremental=False, max_tokens=600)
    b = torch_q4.analyze(text, incremental=False, max_tokens=600)
    assert a.n_tokens > 300
    assert_probabilities_close(a, b, STORED_TOL * 5)


def test_in_memory_float32_model_runs_stored():
    a, b = tiny_engine("stored"), tiny_engine("torch")
    assert a.backend == "stored", a.notice
    assert_probabilities_close(a.analyze(TEXTS[0]), b.analyze(TEXTS[0]), STORED_TOL)


def test_graphs_are_cached_and_a_damaged_one_is_rebuilt(stored_q4, tiny_gguf, monkeypatch):
    from explainer.core.backends import stored_backend as sb

    record = sb.cached_graphs(stored_q4._backends.identity)
    assert record is not None and record["probe"]["top_ids"]
    monkeypatch.setattr(sb, "build_graphs", lambda *a, **k: pytest.fail("built again"))
    assert Engine(tiny_gguf, device="cpu", backend="stored").backend == "stored"
    monkeypatch.undo()
    path = record["paths"]["layers-data"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))
    assert sb.cached_graphs(stored_q4._backends.identity) is None
    eng = Engine(tiny_gguf, device="cpu", backend="stored")
    assert eng.backend == "stored" and sb.cached_graphs(eng._backends.identity) is not None


def test_an_older_version_s_cache_files_of_the_model_are_removed_when_it_loads(stored_q4, tiny_gguf):
    """A format change leaves the converted weights and graphs an older version wrote (each as large as the
    model) unused: they are deleted once this version's own are in place; other models' files stay."""
    from explainer.core import gguf_loader
    from explainer.core.backends import stored_backend as sb
    from explainer.core.paths import cache_dir, sha256_file

    identity = stored_q4._backends.identity
    onnx_dir, weights_dir = cache_dir() / "onnx", cache_dir() / "weights"
    sha = sha256_file(tiny_gguf)[:24]
    old = [
        onnx_dir / f"{identity[:26]}-stored{sb.STORED_FORMAT - 1}-layers.data",
        onnx_dir / f"{identity[:26]}-stored{sb.STORED_FORMAT - 1}.json",
        weights_dir / f"{sha}-v{gguf_loader.CACHE_FORMAT - 1}.safetensors",
    ]
    others = [onnx_dir / f"gguf-0000000000000000000000-stored{sb.STORED_FORMAT - 1}.json"]
    for p in old + others:
        p.write_bytes(b"an older version's file")
    eng = Engine(tiny_gguf, device="cpu", backend="stored")
    assert eng.backend == "stored"
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in others)
    assert sb.cached_graphs(identity) is not None


def test_the_probe_runs_once_per_runtime_and_cpu(stored_q4, tiny_gguf, monkeypatch):
    import explainer.core.backends.select as select
    from explainer.core.backends import stored_backend as sb

    assert sb.verified_here(sb.cached_graphs(stored_q4._backends.identity))

    def refuse(*a, **k):
        raise RuntimeError("checked again")

    monkeypatch.setattr(select, "check_agreement", refuse)
    assert Engine(tiny_gguf, device="cpu", backend="stored").backend == "stored"
    monkeypatch.setattr(sb, "_runtime_key", lambda: "onnxruntime 0.0 | another CPU")
    assert not sb.verified_here(sb.cached_graphs(stored_q4._backends.identity))
    eng = Engine(tiny_gguf, device="cpu", backend="stored")  # the check runs (and fails here)
    assert eng.backend == "torch" and "checked again" in eng.notice


def test_disagreeing_stored_backend_falls_back_to_torch(stored_q4, tiny_gguf, monkeypatch):
    from explainer.core.backends import stored_backend as sb

    monkeypatch.setattr(sb, "TOLERANCE", -1.0)
    monkeypatch.setattr(sb, "_runtime_key", lambda: "onnxruntime 0.0 | a CPU where it never ran")
    eng = Engine(tiny_gguf, device="cpu", backend="stored")
    assert eng.backend == "torch" and "stored-weights" in eng.notice and "differs from torch" in eng.notice
    assert eng.analyze("still works").backend == "torch"


def test_serving_keeps_no_float32_model_and_the_walkthrough_reads_its_rows_on_demand(stored_q4, tiny_gguf):
    from explainer.core.walkthrough import walkthrough

    eng = Engine(tiny_gguf, device="cpu", backend="stored")  # graphs cached: built without the torch model
    r = eng.analyze(TEXTS[0])
    w = walkthrough(r, 1, 2, r.n_tokens - 1)
    assert eng.backend == "stored" and eng._model is None and eng._backends._torch is None
    assert isinstance(r.weights.layer(1)["wq"].base, np.memmap)  # pages of the weight cache, read when used
    np.testing.assert_allclose(w.weights.sum(), 1.0, atol=1e-9)


def test_auto_picks_stored_for_a_model_file(stored_q4, tiny_gguf):
    assert Engine(tiny_gguf, device="cpu", backend="auto").backend == "stored"


def test_unsupported_storage_is_one_sentence_and_auto_stays_quiet(tmp_path, bundled_gguf, monkeypatch):
    from tests.gguf_factory import write_tiny_llama

    monkeypatch.setenv("EXPLAINER_CACHE", str(tmp_path / "cache"))
    path = write_tiny_llama(
        tmp_path / "q5.gguf", TINY_CONFIG, random_weights(TINY_CONFIG, 6), bundled_gguf, "llama", "Q5_0"
    )
    eng = Engine(path, device="cpu", backend="stored")
    assert eng.backend == "torch"
    assert "stored-weights backend is not available" in eng.notice and "Q5_0" in eng.notice
    assert "\n" not in eng.notice
    auto = Engine(path, device="cpu", backend="auto")
    assert auto.backend == "torch" and auto.notice is None
    auto.close()


def test_the_readable_model_is_read_ahead_in_one_pass_not_page_by_page(stored_q4, tiny_gguf, monkeypatch):
    """Serving keeps the float32 weights mapped, not read. Their file is read from start to end before the torch
    model is first built (attribution, patching), and the app reads it (and torch's libraries) in the background
    when idle; once the model exists there is nothing left to read ahead."""
    import explainer.core.engine as engine_module

    eng = Engine(tiny_gguf, device="cpu", backend="stored")
    files = sorted({str(a.filename) for a in eng._weights.values() if isinstance(a, np.memmap)})
    assert files and eng._model is None
    started = []
    monkeypatch.setattr(engine_module, "prefetch", lambda paths: started.append(list(paths)) or "thread")
    assert eng.prefetch_readable_model() == "thread" and files[0] in started[0]
    read = []
    real_read = engine_module.read_into_cache
    monkeypatch.setattr(engine_module, "read_into_cache", lambda paths: read.append(list(paths)) or real_read(paths))
    r = eng.analyze(TEXTS[0], ablated=[(0, 1)])  # the stored weights knock heads out themselves: no torch model
    assert r.ablated == ((0, 1),) and r.backend == "stored" and eng._model is None and read == []
    assert eng.model is not None  # its first use (attribution, patching) builds it
    assert read == [files]
    assert eng.prefetch_readable_model() is None


IDLE_PROBE = """
import sys, time
from explainer.core.engine import Engine
eng = Engine(sys.argv[1], device="cpu", backend="stored")
assert eng.backend == "stored", eng.notice
text = "The cat sat on the mat, and the dog sat on the rug."
for i in range(1, 12):
    eng.analyze(text[: 30 + i])  # keystrokes: the runtime's workers spin between nodes while a call runs
c0 = time.process_time()
time.sleep(0.4)
print(time.process_time() - c0)
"""


def test_the_runtime_s_workers_take_no_cpu_once_a_call_returned(stored_q4, tiny_gguf):
    """Idle after a keystroke, the process takes no CPU: ONNX Runtime's workers spin only while a call runs. Left
    to themselves they spin on for ~45 ms after it (measured here), a core each taken from the window just when
    it draws the new result."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "EXPLAINER_ORT_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", IDLE_PROBE, str(tiny_gguf)], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    idle_cpu_s = float(out.stdout.strip().splitlines()[-1])
    assert idle_cpu_s < 0.015, f"{idle_cpu_s:.3f} s of CPU in 0.4 s idle"


def test_many_rows_statistics_equal_the_row_by_row_ones(stored_q4):
    """Three rows or more (a pasted text) run in the graph that decodes the Q8_0 output table slice by slice and
    regroups the sums over the vocabulary; one or two (a keystroke) in the 4-bit graph, row by row. Both give the
    same statistics, whole distributions included, and the next token's log-probability in any slice."""
    be = stored_q4._backends.active
    assert be.unembedding_rows is not None
    r = stored_q4.analyze(TEXTS[1] + " " + TEXTS[0], incremental=False)
    n, V = r.n_tokens, stored_q4.info.vocab_size
    assert n > 2
    rng = np.random.default_rng(3)
    nxt = rng.integers(0, V, n)
    nxt[0], nxt[1], nxt[-1] = V - 1, 0, -1  # the last slice's last id, the first id, no next token
    many = be.row_stats(r.final_normed, nxt, 20)
    one = [be.row_stats(r.final_normed[i : i + 1], nxt[i : i + 1], 20) for i in range(n)]
    # the two kernels round the logits differently (float32, ~1e-6 of their size): within 1e-5 of a probability,
    # 5e-5 of a nat or bit (a kernel that rounded the activations to int8 would be off by ~1e-3)
    for field, tol in (("lse", 5e-5), ("entropy_bits", 5e-5), ("next_logp", 5e-5), ("top_probs", 1e-5)):
        got, want = getattr(many, field), np.concatenate([getattr(o, field) for o in one])
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, equal_nan=True, err_msg=field)
    assert np.isnan(many.next_logp[-1]) and np.isfinite(many.next_logp[:-1]).all()
    assert (many.top_ids[:, :5] == np.concatenate([o.top_ids for o in one])[:, :5]).all()
    full = be.probabilities(r.final_normed[:3])  # k = V: every id, from the merged slices' top lists
    np.testing.assert_allclose(full.sum(axis=1), 1.0, atol=1e-6)
    rows = np.concatenate([be.probabilities(r.final_normed[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(full, rows, atol=1e-5)


def test_the_kernel_floor_times_each_four_bit_kernel_of_a_one_token_step(stored_q4):
    """``explainer bench``'s floor: every MatMulNBits of the layers (q|k|v, o, gate|up and down per layer) and the
    output table's two 4-bit halves, each on one row of its width, with the graphs' own weights."""
    import onnx

    from explainer.bench import kernel_floor
    from explainer.core.backends.stored_backend import _kernels_only

    be, c = stored_q4._backends.active, stored_q4.cfg
    floor = kernel_floor(stored_q4, repeats=3)
    assert floor["layers_kernels"] == 4 * c.n_layers and floor["unembedding_kernels"] == 2
    assert floor["layers"] > 0 and floor["unembedding"] > 0
    assert floor["total"] == pytest.approx(floor["layers"] + floor["unembedding"], abs=0.011)
    model, _ = _kernels_only(be.graph_files["layers"])
    g = onnx.load_from_string(model).graph
    widths = [o.type.tensor_type.shape.dim[1].dim_value for o in g.output]
    per_layer = (c.n_heads + 2 * c.n_kv_heads) * c.d_head + c.d_model + 2 * c.d_ff + c.d_model
    assert sum(widths) == c.n_layers * per_layer
    assert sorted(i.name for i in g.input) == sorted({f"row_{c.d_model}", f"row_{c.d_ff}"})


def test_small_steps_reuse_their_bound_buffers_and_return_copies(stored_q4, monkeypatch):
    """A keystroke's call (a few new tokens) runs on buffers bound once and returns copies: every step equals
    the same step with the result's own arrays bound (as for many tokens), whatever came before it (a long
    call, a knocked-out view, another token count, a grown cache), and no step's arrays change afterwards."""
    import explainer.core.backends.stored_backend as sb

    be = stored_q4._backends.active
    ids = np.asarray(stored_q4.tokenizer.encode(TEXTS[1] + " " + TEXTS[0]), np.int64)
    assert len(ids) > 12

    def step(backend, cache, new):
        return backend.forward(ids[cache.length if cache else 0 : (cache.length if cache else 0) + new], cache)

    def fields(s):
        return s.hidden, s.final_normed, s.attention

    def run(backend):
        """A sequence of calls on ``backend``: each step's arrays (copies, to compare after the sequence)."""
        head = backend.forward(ids[:6], None)  # many tokens
        out, kept = [], []
        cache = head.cache
        for new in (1, 1, 2, 1):  # a few tokens at a time; S changes at each, n at the third
            s = step(backend, cache, new)
            out.append(s)
            kept.append([a.copy() for a in fields(s)])
            cache = s.cache
        again = backend.forward(ids[cache.length - 1 : cache.length], backend.truncate(cache, cache.length - 1))
        out.append(again)  # the same n and S as the step before: nothing rebound
        kept.append([a.copy() for a in fields(again)])
        return out, kept

    small, kept = run(be)
    for s, k in zip(small, kept, strict=True):  # later calls wrote into the bound buffers, not into results
        for a, b in zip(fields(s), k, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(small[0].hidden, small[1].hidden)
    view = be.knocking_out(((0, 1),))
    knocked, _ = run(view)
    assert not np.allclose(knocked[0].final_normed, small[0].final_normed)  # its own binding and buffers
    monkeypatch.setattr(sb, "SMALL_STEP", 0)  # every call binds its result's own arrays
    fresh, _ = run(be.knocking_out(()))
    for s, f in zip(small, fresh, strict=True):
        for a, b in zip(fields(s), fields(f), strict=True):
            np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    long_ids = np.resize(ids, 300)  # past the cache's first capacity: the buffer grows, the binding is new
    grown = be.forward(long_ids[:-1], None)
    last = be.forward(long_ids[-1:], grown.cache)
    assert grown.cache.buf is not small[-1].cache.buf and last.attention.shape[-1] == 300
    whole = be.forward(long_ids, None)
    np.testing.assert_allclose(last.final_normed, whole.final_normed[-1:], atol=1e-4)
    monkeypatch.setattr(sb, "SMALL_STEP_KEYS", 100)  # a long context: one token binds its own arrays again
    plain = be.forward(long_ids[-1:], grown.cache)
    monkeypatch.undo()
    bound = be.forward(long_ids[-1:], grown.cache)  # and the next small step binds its buffers anew
    for a, b, c in zip(fields(plain), fields(bound), fields(last), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)


def test_a_keystroke_s_rows_are_scored_on_bound_buffers_exactly_as_by_a_plain_call(stored_q4):
    """One or two rows run in the one-row graph on buffers bound once per k: the same numbers as a plain call of
    that graph, row by row, for any k and next token (none: NaN), and later calls change no earlier result."""
    from explainer.core.backends.stored_backend import _STATS

    be = stored_q4._backends.active
    r = stored_q4.analyze(TEXTS[0], incremental=False)
    rows, V = r.final_normed[:2], stored_q4.info.vocab_size
    earlier = []
    for k, nxt in ((5, [3, -1]), (5, [V - 1, 0]), (12, [-1, 7])):
        got = be.row_stats(rows, np.array(nxt), k)
        for i in range(2):
            feed = {"normed": rows[i : i + 1], "next_ids": np.array([max(nxt[i], 0)]), "k": np.array([k])}
            lse, ent, nlp, top_ids, top_p = be.unembedding.run(_STATS, feed)
            assert got.lse[i] == lse[0, 0] and got.entropy_bits[i] == np.float32(ent[0, 0])
            assert (got.top_ids[i] == top_ids[0]).all() and (got.top_probs[i] == top_p[0].astype(np.float32)).all()
            assert np.isnan(got.next_logp[i]) if nxt[i] < 0 else got.next_logp[i] == nlp[0, 0]
        earlier.append((got, [a.copy() for a in (got.lse, got.top_ids, got.top_probs)]))
    for got, kept in earlier:
        for a, b in zip((got.lse, got.top_ids, got.top_probs), kept, strict=True):
            np.testing.assert_array_equal(a, b)

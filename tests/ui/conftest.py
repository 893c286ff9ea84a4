"""QSettings in a temporary folder for every UI test, and a fast fake engine.

The fake engine builds a real ``AnalysisResult`` from a deterministic toy model (word-ish tokens, random but
seeded numbers), so controller tests can make it slow or make it fail on purpose. Tests that compare panels with
the core use ``demo_engine`` (a tiny random-weight Llama with the real tokenizer).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import time

_TMP = tempfile.mkdtemp(prefix="explainer-ui-tests-")
atexit.register(shutil.rmtree, _TMP, True)  # removed when the process ends
os.environ["XDG_CONFIG_HOME"] = os.path.join(_TMP, "config")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from explainer.core.errors import UserError  # noqa: E402
from explainer.core.types import AnalysisResult, Attention, ModelInfo, Token, readonly  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_settings(qt_isolated):
    """Every UI test keeps its QSettings and autosave folder in its own temporary folder."""


@pytest.fixture(scope="session")
def demo():
    """The tiny demo engine, shared by the session (it is read-only between analyses)."""
    from explainer.core.engine import demo_engine

    return demo_engine()


# --- a fake engine ---------------------------------------------------------------------------------------
FAKE_INFO = ModelInfo(
    name="fake-llama",
    n_layers=2,
    n_heads=3,
    n_kv_heads=1,
    d_model=16,
    d_head=8,
    d_ff=32,
    vocab_size=300,
    n_params=123_456,
    context_length=512,
    rope_theta=1e4,
    norm_eps=1e-5,
)


class FakeTokenizer:
    name = "fake"

    def token_bytes(self, token_id: int) -> bytes:
        return b"<s>" if token_id == 0 else f" w{token_id}".encode()

    def decode(self, ids) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")


class FakeEngine:
    """Analyses text with a seeded toy model; ``delay_s`` makes it slow, ``fail_on`` makes it raise."""

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None, info: ModelInfo = FAKE_INFO):
        self.info = info
        self.tokenizer = FakeTokenizer()
        self.device, self.backend = "cpu", "fake"
        self.delay_s, self.fail_on = delay_s, fail_on
        rng = np.random.default_rng(0)
        self.embedding_table = readonly(rng.normal(size=(info.vocab_size, info.d_model)).astype(np.float32))
        self.calls: list[str] = []
        self.threads: set[str] = set()

    def analyze(
        self,
        text: str,
        *,
        start_token: bool = True,
        max_tokens: int = 512,
        parse_specials: bool = False,
        top_k: int = 64,
        generation: int = 0,
    ) -> AnalysisResult:
        self.calls.append(text)
        self.threads.add(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_on is not None and self.fail_on in text:
            raise RuntimeError(f"fake failure on {self.fail_on!r}")
        return fake_result(text, self, start_token=start_token, top_k=top_k, generation=generation)


def fake_result(
    text: str, engine: FakeEngine | None = None, *, start_token: bool = True, top_k: int = 16, generation: int = 0
) -> AnalysisResult:
    engine = engine or FakeEngine()
    info = engine.info
    toks: list[Token] = [Token(0, b"<s>", 0, 0, special=True, added=True)] if start_token else []
    for m in re.finditer(r"\s*\S+|\s+", text):
        data = m.group().encode()
        toks.append(Token(1 + (sum(data) % (info.vocab_size - 1)), data, m.start(), m.end()))
    T, D, L = len(toks), info.d_model, info.n_layers
    ids = np.array([t.id for t in toks], np.int64)
    rng = np.random.default_rng(abs(hash(text)) % 2**32)
    hidden = rng.normal(size=(L + 1, T, D)).astype(np.float32)
    final = hidden[-1] / np.linalg.norm(hidden[-1], axis=-1, keepdims=True).clip(1e-6) * 3
    logits = final @ engine.embedding_table.T  # [T, V]
    logits = logits - logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    token_prob = np.full(T, np.nan, np.float32)
    token_prob[1:] = probs[np.arange(T - 1), ids[1:]]
    ent = -(probs * np.log2(np.clip(probs, 1e-30, 1))).sum(-1).astype(np.float32)
    top_ids = np.argsort(-probs, axis=-1)[:, :top_k]
    top_probs = np.take_along_axis(probs, top_ids, -1).astype(np.float32)
    att = rng.random((L, info.n_heads, T, T)).astype(np.float32) * np.tril(np.ones((T, T), np.float32))
    att /= att.sum(-1, keepdims=True)
    return AnalysisResult(
        text=text,
        model=info,
        device=engine.device,
        backend=engine.backend,
        tokenizer="fake",
        tokens=tuple(toks),
        ids=readonly(ids),
        start_token=start_token,
        truncated=False,
        dropped=(),
        specials_parsed=False,
        token_prob=readonly(token_prob),
        surprisal_bits=readonly(-np.log2(token_prob)),
        entropy_bits=readonly(ent),
        top_ids=readonly(top_ids),
        top_probs=readonly(top_probs),
        sentence_logprob=float(np.nansum(np.log(token_prob.astype(np.float64)))),
        hidden=readonly(hidden),
        final_normed=readonly(final.astype(np.float32)),
        attention=Attention([att]),
        unembedding=engine.embedding_table,
        latency_ms=1.0,
        generation=generation,
    )


class FailingFactory:
    def __init__(self, message: str = "The model file is not a GGUF file."):
        self.message = message

    def __call__(self, progress):
        progress("Reading the model…", 0.5)
        raise UserError(self.message)


@pytest.fixture
def fake_engine():
    return FakeEngine()


@pytest.fixture
def fakes():
    """The fake engine pieces, for tests (import-free: test modules must not import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        FakeEngine=FakeEngine, FailingFactory=FailingFactory, fake_result=fake_result, FAKE_INFO=FAKE_INFO
    )


ORIGINAL_CACHE = os.environ.get("EXPLAINER_CACHE")


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("explainer-cache")


@pytest.fixture
def temp_cache(_session_cache, monkeypatch):
    """EXPLAINER_CACHE in a temporary folder, for tests that write caches (the embedding map's axes)."""
    monkeypatch.setenv("EXPLAINER_CACHE", str(_session_cache))
    return _session_cache


def wait_for_result(qtbot, window, text=None, timeout=20000):
    """Until the window shows a result (for ``text``, if given) and the controller is idle."""
    qtbot.waitUntil(
        lambda: (
            window.result is not None and (text is None or window.result.text == text) and not window.controller.busy
        ),
        timeout=timeout,
    )


@pytest.fixture
def wait_result(qtbot):
    return lambda window, text=None, timeout=20000: wait_for_result(qtbot, window, text, timeout)

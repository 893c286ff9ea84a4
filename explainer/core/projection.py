"""Fixed 2-D maps of the model's vectors: PCA axes fitted once per layer on reference data.

A token's vector at a layer has ``D`` = 576 numbers. To draw it we *project* it onto two directions (axes) and
plot the two coordinates. The axes are the first two principal components (PCA) of reference data, fitted
**once** per layer and cached (in memory and as ``.npy`` files in ``paths.cache_dir()``), never refitted while
the user types, so points do not jump when the text changes.

- Layer 0 (input embeddings): fitted on the whole input-embedding table ``[V, D]``.
- Layer ``l`` ≥ 1 (the residual stream after layer ``l``): fitted on the hidden states of the fixed built-in
  reference text (``reference_corpus.REFERENCE_TEXTS``) run through the engine once; the start token is left
  out of the fit (it is the attention sink and carries the largest activations).

Normalisation (against "massive activations": a few dimensions reach ~2e4 while most stay near 1):
  1. RMS-normalise each vector, ``x / sqrt(mean(x²))`` — the same scaling the model's own RMSNorm applies
     before the next layer reads the vector, so a vector's overall size (dominated by a few huge
     dimensions) no longer matters, only its direction;
  2. standardise each dimension with the reference mean and standard deviation, so every dimension counts
     equally in the fit and a single huge dimension cannot become an axis by itself;
  3. PCA (by SVD / eigen-decomposition) of the standardised reference data; keep the two leading axes.
Signs are chosen deterministically and aligned with the previous layer's axes, so the map changes smoothly
when the layer slider moves. ``Axes.explained`` says how much of the spread the two axes capture (often a few
per cent: a 2-D map of 576 dimensions is a rough shadow).

No Qt here. ``Projector.prepare()`` runs the engine on the reference text: call it from the model's worker
thread (the engine is not shared between threads), after which ``fit_layer`` is only a memory look-up.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explainer.core import paths
from explainer.core.reference_corpus import REFERENCE_HASH, REFERENCE_TEXTS

log = logging.getLogger(__name__)

ALGO_VERSION = 2  # bump when the fitted axes or the cache layout change
_MAGIC = 7.0e6 + 4.0  # first value of every cache vector
_HEADER = 11  # magic, version, layer, D, N, ev0, ev1, xmin, xmax, ymin, ymax
N_TABLE_CLOUD = 3000  # table rows shown as layer 0's background cloud
_EPS = 1e-6


@dataclass(frozen=True)
class Axes:
    """The 2-D map of one layer. ``components`` are orthonormal rows in the standardised space."""

    layer: int
    mean: np.ndarray  # [D] reference mean of the RMS-normalised vectors
    scale: np.ndarray  # [D] reference standard deviation (floored)
    components: np.ndarray  # [2, D]
    explained: np.ndarray  # [2] fraction of the standardised reference variance along each axis
    reference: np.ndarray  # [N, 2] reference points projected (the background cloud)
    reference_ids: np.ndarray  # [N] token id of each reference point
    bounds: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax: a fixed view range

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """``[N, D]`` raw vectors → ``[N, 2]`` float32 coordinates."""
        z = standardise(np.asarray(vectors, np.float32), self.mean, self.scale)
        return (z @ self.components.T.astype(np.float32)).astype(np.float32)

    def pack(self) -> np.ndarray:
        d, n = self.mean.size, self.reference.shape[0]
        head = [_MAGIC, ALGO_VERSION, self.layer, d, n, *self.explained, *self.bounds]
        return np.concatenate(
            [
                np.asarray(head, np.float64),
                self.mean,
                self.scale,
                self.components.ravel(),
                self.reference.ravel(),
                self.reference_ids,
            ]
        ).astype(np.float64)

    @classmethod
    def unpack(cls, v: np.ndarray, layer: int, d_model: int) -> Axes:
        """Inverse of ``pack``; raises ValueError when ``v`` is not a valid cache vector for this layer."""
        if v.ndim != 1 or v.dtype != np.float64 or v.size < _HEADER or not np.all(np.isfinite(v)):
            raise ValueError("not a projection cache vector")
        magic, version, lay, d, n = v[:5]
        if magic != _MAGIC or version != ALGO_VERSION or lay != layer or d != d_model:
            raise ValueError("projection cache of another version, layer or model")
        d, n = int(d), int(n)
        if v.size != _HEADER + 4 * d + 3 * n:
            raise ValueError("projection cache has the wrong length")
        o = _HEADER
        mean, scale, comps = v[o : o + d], v[o + d : o + 2 * d], v[o + 2 * d : o + 4 * d].reshape(2, d)
        ref = v[o + 4 * d : o + 4 * d + 2 * n].reshape(n, 2)
        ids = v[o + 4 * d + 2 * n :]
        if np.any(scale <= 0) or not np.allclose(comps @ comps.T, np.eye(2), atol=1e-5):
            raise ValueError("projection cache is inconsistent")
        return _make_axes(layer, mean, scale, comps, v[5:7], ref, ids, tuple(float(b) for b in v[7:11]))


def _make_axes(layer, mean, scale, comps, explained, ref, ids, bounds) -> Axes:
    """Read-only float32 copies of the arrays (int64 for the token ids), as an ``Axes``."""

    def frozen(a, dtype) -> np.ndarray:
        a = np.array(a, dtype)
        a.flags.writeable = False
        return a

    mean, scale, comps, explained, ref = (frozen(a, np.float32) for a in (mean, scale, comps, explained, ref))
    return Axes(layer, mean, scale, comps, explained, ref, frozen(ids, np.int64), bounds)


def rms_normalise(x: np.ndarray) -> np.ndarray:
    """Each row divided by its root mean square (what RMSNorm does before its gain)."""
    x = np.asarray(x, np.float32)
    return x / np.sqrt(np.mean(np.square(x, dtype=np.float32), axis=-1, keepdims=True) + _EPS)


def standardise(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (rms_normalise(x) - mean) / scale


def _bounds(points: np.ndarray, margin: float = 0.08) -> tuple[float, float, float, float]:
    """A fixed view range: every reference point plus a margin (points of a new text outside it are drawn
    clamped to the edge)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.maximum(hi - lo, 1e-3)
    lo, hi = lo - margin * span, hi + margin * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _orient(comps: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Deterministic signs: agree with the previous layer's axes, else make the largest loading positive."""
    comps = comps.copy()
    for i in range(comps.shape[0]):
        if previous is not None:
            s = np.sign(comps[i] @ previous[i])
        else:
            s = np.sign(comps[i][np.argmax(np.abs(comps[i]))])
        comps[i] *= s if s != 0 else 1.0
    return comps


def fit_axes(
    layer: int,
    vectors: np.ndarray,
    ids: np.ndarray,
    *,
    previous: np.ndarray | None = None,
    cloud: np.ndarray | None = None,
    chunk: int = 8192,
) -> Axes:
    """Fit the normalisation and the two leading principal axes on ``vectors [N, D]``.

    ``cloud`` (indices into ``vectors``) picks the points kept as the background cloud (default: all).
    Works in chunks so the 49152-row embedding table needs little extra memory.
    """
    n, d = vectors.shape

    def chunks():  # RMS-normalised float64 chunks, recomputed per pass (the table is 49152 × 576)
        for i in range(0, n, chunk):
            yield rms_normalise(vectors[i : i + chunk]).astype(np.float64)

    mean = sum(x.sum(0) for x in chunks()) / n
    var = sum(np.square(x - mean).sum(0) for x in chunks()) / n
    scale = np.sqrt(var)
    scale = np.maximum(scale, max(1e-6, 1e-3 * float(np.median(scale))))
    cov = np.zeros((d, d))
    for x in chunks():
        z = (x - mean) / scale
        cov += z.T @ z
    cov /= n
    evals, evecs = np.linalg.eigh(cov)  # ascending
    order = np.argsort(evals)[::-1][:2]
    comps = _orient(evecs[:, order].T, previous)
    explained = np.clip(evals[order], 0, None) / max(float(np.trace(cov)), 1e-12)
    every = np.concatenate([((x - mean) / scale) @ comps.T for x in chunks()])  # [N, 2]
    cloud = np.arange(n) if cloud is None else np.asarray(cloud)
    # the view holds every fitted vector (at layer 0 the most frequent tokens sit at the far end of axis 1)
    return _make_axes(layer, mean, scale, comps, explained, every[cloud], np.asarray(ids)[cloud], _bounds(every))


def model_key(info, embedding_table: np.ndarray) -> str:
    """Identity of a model for the cache: name, size, shape and a hash of a sparse sample of its embeddings."""
    h = hashlib.sha256()
    h.update(f"{info.name}|{info.n_params}|{info.n_layers}|{info.d_model}|{info.vocab_size}".encode())
    sample = np.ascontiguousarray(
        embedding_table[:: max(1, embedding_table.shape[0] // 257), :: max(1, embedding_table.shape[1] // 31)],
        np.float32,
    )
    h.update(sample.tobytes())
    h.update(f"{REFERENCE_HASH}|v{ALGO_VERSION}".encode())
    return h.hexdigest()[:20]


def save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as .npy atomically (never a pickle)."""
    from explainer.core.paths import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    atomic_write(path, write)


def reference_hidden_from_engine(engine) -> tuple[np.ndarray, np.ndarray]:
    """Run the reference texts through ``engine`` → hidden ``[L+1, N, D]`` and token ids ``[N]`` (start tokens
    left out)."""
    hs, ids = [], []
    for text in REFERENCE_TEXTS:
        r = engine.analyze(text, start_token=True)
        skip = 1 if r.start_token else 0
        hs.append(np.asarray(r.hidden[:, skip:, :], np.float32))
        ids.append(np.asarray(r.ids[skip:], np.int64))
    return np.concatenate(hs, axis=1), np.concatenate(ids)


class Projector:
    """Per-layer PCA axes for one model, fitted once and cached; see the module docstring.

    ``Projector(engine)`` takes ``engine.info``, ``engine.embedding_table`` and runs ``engine.analyze`` on the
    reference text when a layer ≥ 1 is first needed. For tests, pass ``info``, ``embedding_table`` and
    ``reference`` (a callable returning ``(hidden [L+1, N, D], ids [N])``) instead of an engine.
    """

    def __init__(
        self,
        engine=None,
        *,
        info=None,
        embedding_table: np.ndarray | None = None,
        reference: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
        cache_dir: Path | str | None = None,
        disk_cache: bool = True,
    ):
        self.info = info if info is not None else engine.info
        self.embedding_table = embedding_table if embedding_table is not None else engine.embedding_table
        if reference is None and engine is not None:
            reference = lambda: reference_hidden_from_engine(engine)  # noqa: E731
        self._reference = reference
        self._tokenizer = getattr(engine, "tokenizer", None)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.disk_cache = disk_cache
        self.key = model_key(self.info, self.embedding_table)
        self._axes: dict[int, Axes] = {}
        self._lock = threading.RLock()
        self.fit_count = 0  # number of PCA fits actually run (tests: must not grow while typing)

    @property
    def n_layers(self) -> int:
        return self.info.n_layers

    def cache_path(self, layer: int) -> Path:
        if self._cache_dir is not None:
            folder = self._cache_dir
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = paths.cache_dir("projection")
        return folder / f"pca-{self.key}-layer{layer:02d}.npy"

    def is_ready(self, layer: int) -> bool:
        """True when ``layer``'s axes are in memory."""
        return layer in self._axes

    def axes_if_available(self, layer: int) -> Axes | None:
        """The axes from memory or the disk cache, never fitting (safe on the UI thread); None if not yet."""
        if layer in self._axes:
            return self._axes[layer]
        # no lock: the worker may hold it for seconds while fitting; files are replaced atomically, and two
        # threads loading the same file store equal axes
        axes = self._load(layer)
        if axes is not None:
            self._axes.setdefault(layer, axes)
        return axes

    def token_label(self, token_id: int) -> str | None:
        """A token's text with visible whitespace, when the engine's tokenizer is known."""
        if self._tokenizer is None:
            return None
        from explainer.core.types import Token

        try:
            b = self._tokenizer.token_bytes(int(token_id))
        except ValueError:  # an id beyond the tokenizer's vocabulary (padding rows of the table)
            return None
        return Token(int(token_id), b, 0, 0).display

    def fit_layer(self, layer: int) -> Axes:
        """The axes of ``layer`` (0 = input embeddings, ``l`` = after layer ``l``): memory, else disk, else fit."""
        if not 0 <= layer <= self.n_layers:
            raise IndexError(f"layer {layer} not in 0..{self.n_layers}")
        axes = self._axes.get(layer)
        if axes is not None:
            return axes
        with self._lock:
            if layer in self._axes:
                return self._axes[layer]
            axes = self._load(layer)
            if axes is not None:
                self._axes[layer] = axes
                return axes
            if layer == 0:
                self._fit_table()
            else:
                self._fit_reference()
            return self._axes[layer]

    def prepare(self) -> None:
        """Make every layer's axes available (loads the cache or runs the reference text once)."""
        for layer in range(self.n_layers + 1):
            self.fit_layer(layer)

    def project(self, result, layer: int) -> np.ndarray:
        """``[T, 2]`` float32 coordinates of every token of ``result`` at ``layer``."""
        if result.hidden.shape[2] != self.info.d_model:
            raise ValueError("the result comes from a different model than this projector")
        return self.fit_layer(layer).project(result.hidden[layer])

    def trajectory(self, result, position: int, layer: int) -> np.ndarray:
        """``[layer+1, 2]``: one token's vector after each layer ``0..layer``, all drawn on ``layer``'s map (one
        coordinate system, so the path shows how the vector drifted towards where it is now)."""
        return self.fit_layer(layer).project(result.hidden[: layer + 1, position])

    # --- internals -----------------------------------------------------------------------------------------
    def _load(self, layer: int) -> Axes | None:
        if not self.disk_cache:
            return None
        p = self.cache_path(layer)
        if not p.is_file():
            return None
        try:
            return Axes.unpack(np.load(p, allow_pickle=False), layer, self.info.d_model)
        except Exception as e:  # noqa: BLE001 - corrupt, truncated, other version: rebuild
            log.warning("projection cache %s unusable (%s); refitting", p.name, e)
            return None

    def _store(self, axes: Axes) -> None:
        self._axes[axes.layer] = axes
        if self.disk_cache:
            try:
                save_atomic(self.cache_path(axes.layer), axes.pack())
            except OSError as e:
                log.warning("could not write projection cache: %s", e)

    def _fit_table(self) -> None:
        table = np.asarray(self.embedding_table, np.float32)
        rng = np.random.default_rng(0)
        cloud = np.sort(rng.choice(table.shape[0], size=min(N_TABLE_CLOUD, table.shape[0]), replace=False))
        self.fit_count += 1
        self._store(fit_axes(0, table, np.arange(table.shape[0]), cloud=cloud))

    def _fit_reference(self) -> None:
        if self._reference is None:
            raise RuntimeError("layers after 0 need reference activations: give the Projector an engine")
        previous = self.fit_layer(0).components
        hidden, ids = self._reference()
        if hidden.shape[0] != self.n_layers + 1 or hidden.shape[2] != self.info.d_model:
            raise ValueError(f"reference hidden states have shape {hidden.shape}")
        for layer in range(1, self.n_layers + 1):
            self.fit_count += 1
            axes = fit_axes(layer, hidden[layer], ids, previous=previous)
            self._store(axes)
            previous = axes.components


def nearest_neighbours(embedding_table: np.ndarray, token_id: int, k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` tokens whose input embeddings have the highest cosine similarity with ``token_id``'s
    (itself excluded), best first, as ``(id, cosine)``."""
    table = np.asarray(embedding_table, np.float32)
    q = table[token_id]
    norms = np.sqrt(np.einsum("ij,ij->i", table, table))
    cos = (table @ q) / (np.maximum(norms, 1e-12) * max(float(np.linalg.norm(q)), 1e-12))
    cos[token_id] = -np.inf
    k = max(0, min(k, table.shape[0] - 1))
    if k == 0:
        return []
    top = np.argpartition(-cos, k - 1)[:k]
    top = top[np.argsort(-cos[top], kind="stable")]
    return [(int(i), float(cos[i])) for i in top]

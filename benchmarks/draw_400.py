"""How long each live panel takes to draw a new analysis of a 400-token text (a script, not a test).

An edit at the start of the text changes every position, so every panel redraws everything: this measures that
case. Per panel, alternating between two 400-token results (the text, and the text with one character
typed in front), the median of ``--repeats`` runs of

- update: ``panel.set_result(result)`` (data, layout, items), plus the events it posts;
- paint: drawing the panel once (``QWidget.grab``, the same paint events the screen gets).

    QT_QPA_PLATFORM=offscreen python benchmarks/draw_400.py [--demo] [--tokens 400] [--repeats 5] [--json]

``--demo`` uses the tiny random model (2 layers × 4 heads: the head grid is then much smaller than the real
model's 30 × 9). The goal: update + paint ≤ 100 ms per panel at 400 tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PARAGRAPH = (
    "The eagle circled high above the valley, watching the river below. Every morning it followed the same "
    "path, from the old oak tree on the hill to the rocks where the fish jumped. The farmers in the village "
    "knew the bird well; children waved when its shadow crossed the fields, and the old men said it had lived "
    "there longer than any of them could remember. "
)


def text_of(engine, n_tokens: int) -> str:
    """A text of about ``n_tokens`` tokens (start token included)."""
    words, text = (PARAGRAPH * 40).split(" "), ""
    for w in words:
        candidate = f"{text} {w}" if text else w
        if len(engine.tokenizer.encode(candidate)) + 1 > n_tokens:
            break
        text = candidate
    return text


def make_panels(engine):
    from explainer.core.projection import Projector
    from explainer.ui.panels.attention import AttentionPanel
    from explainer.ui.panels.embeddings import EmbeddingsPanel
    from explainer.ui.panels.next_token import NextTokenPanel
    from explainer.ui.panels.tokens import TokensPanel

    projector = Projector(engine)  # the per-layer axes from the cache once fitted
    projector.prepare()
    nxt = NextTokenPanel()
    nxt.set_token_decoder(engine.tokenizer.token_bytes)
    att_lines = AttentionPanel()
    att_lines.tabs.setCurrentIndex(1)
    return {
        "tokens": (TokensPanel(), (900, 420)),
        "next token": (nxt, (900, 560)),
        "embeddings": (EmbeddingsPanel(projector=projector), (900, 560)),
        "attention heatmap + head grid": (AttentionPanel(), (1000, 720)),
        "attention lines": (att_lines, (1000, 720)),
    }


def measure(panel, size, results, repeats: int) -> dict:
    from PySide6.QtWidgets import QApplication

    panel.resize(*size)
    panel.show()
    panel.set_result(results[1])
    QApplication.processEvents()
    panel.grab()
    update, paint = [], []
    for k in range(repeats):
        r = results[k % 2]
        t0 = time.perf_counter()
        panel.set_result(r)
        QApplication.processEvents()
        t1 = time.perf_counter()
        panel.grab()
        t2 = time.perf_counter()
        update.append(1000 * (t1 - t0))
        paint.append(1000 * (t2 - t1))
    panel.hide()
    u, p = statistics.median(update), statistics.median(paint)
    return {"update_ms": round(u, 1), "paint_ms": round(p, 1), "total_ms": round(u + p, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", action="store_true", help="the tiny random model instead of the bundled one")
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", help="measure only panels whose name contains this")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from explainer.core.engine import Engine, demo_engine

    engine = demo_engine() if args.demo else Engine(device="cpu")
    text = text_of(engine, args.tokens)
    results = [engine.analyze(text), engine.analyze("Y" + text)]
    rows = {}
    for name, (panel, size) in make_panels(engine).items():
        if args.only and args.only not in name:
            continue
        rows[name] = measure(panel, size, results, args.repeats)
    if args.json:
        print(json.dumps({"tokens": results[0].n_tokens, "model": results[0].model.name, "panels": rows}))
    else:
        print(f"{results[0].n_tokens} tokens, {results[0].model.name}; median of {args.repeats} (ms)")
        print(f"{'panel':<32} {'update':>8} {'paint':>8} {'total':>8}")
        for name, r in rows.items():
            print(f"{name:<32} {r['update_ms']:>8.1f} {r['paint_ms']:>8.1f} {r['total_ms']:>8.1f}")
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

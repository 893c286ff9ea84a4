"""Run one panel alone on demo data: ``python -m explainer.ui.panels.tokens [--text T] [--real] [--dark]
[--screenshot FILE.png]``.

Uses the core's tiny demo engine (random weights, the bundled model's real tokenizer) unless ``--real`` loads
the bundled model itself. When neither can be had (the bundled model is not installed), it says so in one
sentence and exits with status 2; it never shows made-up data. With ``--screenshot`` the panel is drawn
offscreen-capable, saved and the program exits.
"""

from __future__ import annotations

import argparse
import sys


def run_alone(
    panel_cls,
    default_text: str,
    argv: list[str] | None = None,
    *,
    size: str = "1000x600",
    add_arguments=None,
    make_engine=None,
    make_panel=None,
    start=None,
) -> int:
    """Show one panel on demo data. Hooks for panels that need more: ``add_arguments(parser)`` adds options,
    ``make_engine(args)`` replaces the engine choice, ``make_panel(engine, args)`` builds the panel, and
    ``start(panel, engine, args)`` gives it its first data (default: the analysis of ``--text``)."""
    ap = argparse.ArgumentParser(prog=f"python -m {panel_cls.__module__}")
    ap.add_argument("--text", default=default_text)
    ap.add_argument("--real", action="store_true", help="use the bundled SmolLM2 model (slower to start)")
    ap.add_argument("--dark", action="store_true")
    ap.add_argument("--screenshot", metavar="FILE.png")
    ap.add_argument("--size", default=size)
    if add_arguments is not None:
        add_arguments(ap)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)

    from explainer.core.errors import UserError

    try:
        engine = _make_engine(args, make_engine)
    except UserError as e:
        print(f"{ap.prog}: {e}", file=sys.stderr)
        return 2

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from explainer.ui import theme as th

    app = QApplication.instance() or QApplication([sys.argv[0]])
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    theme = th.DARK if args.dark else th.LIGHT
    th.apply_theme(app, theme)

    panel = make_panel(engine, args) if make_panel is not None else panel_cls()
    if hasattr(panel, "set_token_decoder"):
        panel.set_token_decoder(engine.tokenizer.token_bytes)
    panel.tokenHovered.connect(panel.highlight_token)
    panel.tokenSelected.connect(panel.select_position)
    if hasattr(panel, "candidateChosen"):

        def append(token_id: int) -> None:
            text = panel.result.text + engine.tokenizer.decode([token_id])
            panel.set_result(engine.analyze(text))

        panel.candidateChosen.connect(append)
    panel.set_theme(theme)
    if start is not None:
        start(panel, engine, args)
    else:
        panel.set_result(engine.analyze(args.text))
    w, h = (int(v) for v in args.size.lower().split("x"))
    panel.resize(w, h)
    panel.setWindowTitle(f"explainer – {panel.title} ({'SmolLM2' if args.real else 'demo'})")
    panel.show()
    if args.screenshot:
        app.processEvents()
        ok = panel.grab().save(args.screenshot)
        panel.close()
        return 0 if ok else 1
    return app.exec()


def _make_engine(args, make_engine):
    if make_engine is not None:
        return make_engine(args)
    if args.real:
        from explainer.core.engine import Engine

        return Engine()
    from explainer.core.engine import demo_engine

    return demo_engine()

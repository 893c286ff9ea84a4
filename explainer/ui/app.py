"""GUI entry point: ``explainer [--model PATH] [--device cpu|cuda|auto] [--text TEXT] [--demo]
[--screenshot FILE.png] [--size WxH] [--scene FILE|NAME] [--view NAME] [--presenter]`` (``explainer --help``
lists these after the subcommands).

The model starts loading in the worker thread first; the window's modules are imported and the window is built
and shown meanwhile (first-run progress in the window).
With ``--screenshot`` the program waits until the analysis of the text is drawn in every panel, saves a PNG of
the whole window and exits 0 (2 with one sentence on stderr when the model cannot be loaded).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from explainer.cli import DashValues

SCREENSHOT_TIMEOUT_S = 300


def parse_size(s: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in s.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1600x1000, not {s!r}") from None
    if not (200 <= w <= 10000 and 200 <= h <= 10000):
        raise argparse.ArgumentTypeError("width and height must be between 200 and 10000 pixels")
    return w, h


class _Parser(DashValues):
    """argparse that reports a mistyped option in one sentence (exit 2), as the commands do, not a usage dump."""

    def error(self, message: str):
        _say(f"{message[:1].upper()}{message[1:]}; run 'explainer --help' for usage.")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="explainer", description="Watch a small language model think while you type.")
    ap.add_argument(
        "--model",
        metavar="PATH",
        help="a GGUF model file or a Hugging Face model folder (Llama, Qwen2, GPT-2); default: the bundled SmolLM2-135M",
    )
    ap.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="auto",
        help="where the model runs (default auto: a CUDA GPU when there is one)",
    )
    ap.add_argument(
        "--backend",
        choices=("auto", "torch", "onnx", "stored"),
        default="auto",
        help="what runs the model: auto (on the CPU: the file's own 4-bit weights in ONNX Runtime when it can, "
        "else ONNX Runtime once its one-time export is ready, else torch), torch, onnx or stored (default auto)",
    )
    ap.add_argument("--text", help="start with this text (default: the text of the last session)")
    ap.add_argument("--screenshot", metavar="FILE.png", help="save a picture of the window and exit")
    ap.add_argument(
        "--size",
        type=parse_size,
        metavar="WxH",
        help="window size (default: the last session's, else 1600x1000 or the screen if smaller)",
    )
    ap.add_argument("--demo", action="store_true", help="a tiny random-weight model (instant; numbers meaningless)")
    ap.add_argument("--theme", choices=("light", "dark"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--scene",
        metavar="FILE|NAME",
        help="open a scene file, or a lecture scene by name or number (strawberry, 04, sink)",
    )
    ap.add_argument(
        "--view",
        metavar="NAME",
        help="show this view: live, tokens, next_token, attention, embeddings, "
        "compare, bpe, heads, walkthrough, lens, chat",
    )
    ap.add_argument(
        "--presenter",
        action="store_true",
        help="start in presenter mode: one large view (the scene's), the text above it and the scene's caption "
        "below, fonts scaled to the screen; full screen unless --size is given",
    )
    return ap


NO_WINDOW = "--screenshot and subcommands such as 'explainer analyze' need no display"


def no_display(screenshot: bool) -> str:
    """One sentence when the window cannot open on this screen (Qt would abort the process with lines of its own),
    else "": Linux without a display server, or an X11 session without a system library that Qt's X11 plugin
    needs (libxcb-cursor since Qt 6.5, and others missing on some fresh systems). A screenshot needs neither: it
    is then drawn offscreen."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return ""
    if os.environ.get("WAYLAND_DISPLAY"):
        return ""
    if display := os.environ.get("DISPLAY"):
        missing = missing_x11_libraries()
        if missing:
            packages = " ".join(debian_package(name) for name in missing)
            problem = (
                f"The window cannot open on this X11 display: Qt needs system libraries that are not installed "
                f"({', '.join(missing)}; on Debian or Ubuntu: sudo apt install {packages}); {NO_WINDOW}."
            )
        elif x11_display_answers(display):
            return ""
        else:
            problem = (
                f"The X11 display {display} (DISPLAY) does not accept a connection: start the app in a desktop "
                f"session; {NO_WINDOW}."
            )
    else:
        problem = (
            "There is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set): start the app in "
            f"a desktop session; {NO_WINDOW}."
        )
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return ""
    return problem


def missing_x11_libraries() -> list[str]:
    """The system libraries Qt's X11 platform plugin (from PySide6) needs and the dynamic loader does not find: all
    of them as ``ldd`` lists them, else the first the loader names; [] when it loads (or is not where PySide6 keeps
    it: then Qt speaks for itself)."""
    import ctypes

    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    if not plugin.is_file():
        return []
    try:
        ctypes.CDLL(str(plugin))  # loads what Qt would load next: only the order changes
    except OSError as e:
        first, _, why = str(e).partition(": ")
        if "cannot open shared object file" not in why:
            return []
        return _not_found_by_ldd(plugin) or [Path(first).name]
    return []


def x11_display_answers(display: str) -> bool:
    """Whether an X11 connection to ``display`` opens (libxcb, which Qt's X11 plugin uses: a display that is gone
    or refuses this user makes Qt abort); True when libxcb itself cannot be loaded (then Qt speaks for itself)."""
    import ctypes

    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)  # never NULL: an error connection on failure
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


def _not_found_by_ldd(path: Path) -> list[str]:
    import subprocess

    try:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = (line.split("=>")[0].strip() for line in out.splitlines() if line.strip().endswith("=> not found"))
    return sorted(set(found))


def debian_package(library: str) -> str:
    """The Debian/Ubuntu package that usually ships ``library``: ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``,
    ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0`` (a dash before the number after a digit)."""
    stem, _, version = library.partition(".so")
    major = version.lstrip(".").split(".")[0]
    if not major:
        return stem.lower()
    return (stem + ("-" if stem[-1:].isdigit() else "") + major).lower()


def _say(message: str) -> None:
    print(f"explainer: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if problem := no_display(bool(args.screenshot)):
        _say(problem)
        return 2

    from PySide6.QtWidgets import QApplication

    from explainer.runtime import gui_gc
    from explainer.runtime.controller import Controller, engine_factory

    app = QApplication.instance() or QApplication([sys.argv[0]])
    gui_gc.install()  # garbage collection only between events, in this thread (see gui_gc)
    app.setOrganizationName("explainer")
    app.setApplicationName("explainer")
    factory = engine_factory(args.model, device=args.device, backend=args.backend, demo=args.demo)
    controller = Controller(factory)
    # the model loads in the worker thread while the window's modules are imported and the window is built
    controller.start()

    import pyqtgraph as pg
    from PySide6.QtCore import QTimer

    from explainer.ui import theme as th
    from explainer.ui.main_window import MainWindow

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    window = MainWindow(controller, text=args.text, device=args.device, backend=args.backend)
    if args.theme:
        window.set_theme(th.THEMES[args.theme])
    if args.size:
        window.resize(*args.size)
    elif args.screenshot:
        window.resize(1600, 1000)
    elif not window.geometry_restored:
        window.resize_to_fit(1600, 1000)
    outcome = {"rc": 0}
    problem = _start_view(window, args)
    if problem:
        _say(problem)
        controller.shutdown()
        window.close()
        return 2

    if args.screenshot:
        want = window.editor.toPlainText()
        state = {"drawn": False, "map": False, "taken": False}

        def on_shown(result) -> None:
            state["drawn"] = state["drawn"] or result.text == want
            maybe_take()

        def on_projection(_projector) -> None:
            state["map"] = True
            maybe_take()

        def maybe_take() -> None:
            if state["drawn"] and state["map"] and not state["taken"]:
                state["taken"] = True
                QTimer.singleShot(50, take)

        def take() -> None:
            if window.result is None or window.result.text != want:  # a later result replaced it: wait
                state["taken"] = state["drawn"] = False
                return
            app.processEvents()
            ok = window.grab().save(args.screenshot, "PNG")
            if not ok:
                _say(f"Could not write the screenshot to {args.screenshot}.")
                outcome["rc"] = 1
            window.close()

        def fail(message: str) -> None:
            _say(message)
            outcome["rc"] = 2
            window.close()

        def timeout() -> None:
            fail(f"No picture after {SCREENSHOT_TIMEOUT_S} s; the screenshot was not taken.")

        window.resultShown.connect(on_shown)
        controller.projectionReady.connect(on_projection)  # the embeddings map is part of the picture
        controller.modelLoadFailed.connect(fail)
        controller.errorOccurred.connect(fail)
        guard = QTimer(window)
        guard.setSingleShot(True)
        guard.timeout.connect(timeout)
        guard.start(SCREENSHOT_TIMEOUT_S * 1000)
        app.aboutToQuit.connect(guard.stop)

    window.show()
    app.setQuitOnLastWindowClosed(True)
    rc = app.exec()
    controller.shutdown()  # no-op when the window already did it
    from explainer.runtime import controller as controller_module

    if controller_module._UNFINISHED:  # a stuck model thread: Qt would abort when it is destroyed at exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(outcome["rc"] or rc)
    return outcome["rc"] or rc


def _start_view(window, args) -> str:
    """Apply --scene, --view and --presenter; one sentence when one cannot be."""
    if args.scene is not None:
        from pathlib import Path

        from explainer.core.errors import UserError
        from explainer.core.scene import load_scene
        from explainer.ui.scenes_ui import find_scene

        if not args.scene.strip():
            names = ", ".join(p.stem for p, _ in window.scenes.lecture)
            return f"--scene needs a scene file or the name or number of a lecture scene ({names})."
        found = find_scene(args.scene, window.scenes.lecture) if not Path(args.scene).is_file() else None
        if found is not None:
            window.scenes.open_lecture(found[0])
        else:
            try:
                load_scene(args.scene)
            except UserError as e:
                names = ", ".join(p.stem for p, _ in window.scenes.lecture)
                return f"{e} (lecture scenes: {names})" if not Path(args.scene).exists() else str(e)
            window.scenes.open_path(args.scene)
    if args.view is not None and not window.teach.show_view(args.view):
        return f"There is no view called {args.view!r}."
    if args.presenter:
        window.presenter.fullscreen = args.size is None
        window.presenter.enter()
    return ""


if __name__ == "__main__":
    raise SystemExit(main())

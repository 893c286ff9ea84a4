"""Launch to first picture: a fresh process opens the app's window until the first result is drawn (a script,
not a test).

Each run starts ``python -m explainer``'s window in a new process (offscreen unless a display is set; its
settings and autosave in a temporary folder, so every run is a returning user with a cached model) and stops
the clock when the window has shown the result for its text. Printed: the median over the runs of the time
from starting the process, and the moments in the process when the window's module was imported (the model is
loading in its thread by then), the window was built and the first result was drawn.

    python benchmarks/launch.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import time
T0 = time.perf_counter()
import importlib.abc
import importlib.util
import json
import sys

marks = {}


def patch(mw):
    from PySide6.QtCore import QTimer

    marks["imports"] = time.perf_counter() - T0  # the window's module is imported: the rest is building
    init = mw.MainWindow.__init__

    def patched(self, *a, **k):
        init(self, *a, **k)
        marks["window"] = time.perf_counter() - T0

        def shown(result):
            if "picture" not in marks:
                marks["picture"] = time.perf_counter() - T0
                print("MARKS " + json.dumps(marks), flush=True)
                QTimer.singleShot(0, self.close)

        self.resultShown.connect(shown)

    mw.MainWindow.__init__ = patched


class Hook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # patches the window class the moment the application imports its module (importing it here first would
    # time the imports in another order than the application's)
    def find_spec(self, name, path, target=None):
        if name != "explainer.ui.main_window":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        self.inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        patch(module)


sys.meta_path.insert(0, Hook())
from explainer.ui.app import main
sys.exit(main(["--text", "The cat sat on the mat because it was warm.", "--size", "1366x768"]))
"""


def one_run(env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True)
    marks = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("MARKS "):
            wall = time.perf_counter() - t0
            marks = json.loads(line[6:])
            marks["from_start"] = wall
    proc.wait(timeout=120)
    if marks is None:
        raise RuntimeError("the window showed no picture")
    return marks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="explainer-launch-")
    env = dict(os.environ, EXPLAINER_DATA=os.path.join(scratch, "data"), XDG_CONFIG_HOME=os.path.join(scratch, "cfg"))
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    try:
        one_run(env)  # a first start writes the settings (and the model's caches if they are missing)
        runs = [one_run(env) for _ in range(args.runs)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {k: round(statistics.median(r[k] for r in runs), 3) for k in ("from_start", "imports", "window", "picture")}
    if args.json:
        print(json.dumps({"runs": args.runs, **med}))
    else:
        print(f"launch to first picture: median {med['from_start']:.2f} s from starting the process ({args.runs} runs)")
        print(
            f"  in the process: window's modules imported at {med['imports']:.2f} s, "
            f"window built at {med['window']:.2f} s, first picture at {med['picture']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

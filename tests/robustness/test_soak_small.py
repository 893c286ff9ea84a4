"""A short soak (the full one is ``python benchmarks/soak.py``): 500 edits through the Controller with a busy
worker leave no extra thread, no extra QTimer, no result objects behind, and bounded memory growth."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_soak():
    spec = importlib.util.spec_from_file_location("explainer_soak", ROOT / "benchmarks" / "soak.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_soak_500_edits(qapp):
    soak = load_soak()
    lines = []
    report = soak.run_soak(500, log=lines.append)
    print("\n".join(lines))
    assert report.errors == 0 and report.results > 0
    assert report.results + report.dropped > 10  # the worker really was busy
    assert report.after.os_threads <= report.before.os_threads, lines
    assert report.after.py_threads <= report.before.py_threads, lines
    assert report.after.active_qtimers <= report.before.active_qtimers, lines
    assert report.after.qtimers <= report.before.qtimers, lines
    assert report.after.qobjects <= report.before.qobjects, lines
    # results of earlier tests' windows may still be alive in a full run: count only what the soak adds
    assert report.after.results_alive <= max(1, report.before.results_alive), lines
    assert report.rss_growth_mb < 25, lines  # the same edits again: nothing should grow (~0-5 MB of noise)
    assert report.after_shutdown_threads < report.after.os_threads  # the worker thread is gone

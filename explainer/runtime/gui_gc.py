"""Cyclic garbage collection only in the GUI thread, at the top of its event loop.

CPython's cycle collector runs wherever an allocation happens to cross its threshold:

* in the model worker thread, which allocates a lot (every analysis): a cycle that holds Qt widgets (a closed
  window, a panel and its lambdas) is then freed from that thread, and Qt forbids deleting widgets outside
  the GUI thread (a crash, or a hang);
* in the GUI thread, but in the middle of a Qt call that walks many widgets and calls back into Python
  (``setStyleSheet`` repolishing every widget, say): a widget freed there is deleted under Qt's feet.

pyqtgraph's ``GarbageCollector`` turns automatic collection off and collects on a GUI-thread timer instead,
so collection only ever happens between events. :func:`install` starts one for the life of the process (the
application calls it at start; every controller calls it before starting its thread).
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QCoreApplication, QThread

_collector: GarbageCollector | None = None


def install(interval_s: float = 0.5) -> None:
    """Collect only on a GUI-thread timer from now on (idempotent; needs a QApplication)."""
    global _collector
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        raise RuntimeError("gui_gc.install() must be called from the GUI thread of a QApplication")
    if _collector is None:
        _collector = GarbageCollector(interval=interval_s)  # disables automatic collection, starts its timer
    else:
        gc.disable()
        if not _collector.timer.isActive():
            _collector.timer.start()


def installed() -> bool:
    """True while collection happens only on the GUI thread's timer."""
    return _collector is not None and _collector.timer.isActive() and not gc.isenabled()


def collect_if_due() -> None:
    """What the timer does (generations past their thresholds are collected); for safe points outside the
    event loop, such as between tests."""
    if _collector is not None:
        _collector.check()


__all__ = ["install", "installed", "collect_if_due"]

"""Cyclic garbage collection only in the GUI thread, at the top of its event loop.

CPython's cycle collector runs wherever an allocation happens to cross its threshold:

* in the model worker thread, which allocates a lot (every analysis): a cycle that holds Qt widgets (a closed
  window, a panel and its lambdas) is then freed from that thread, and Qt forbids deleting widgets outside
  the GUI thread (a crash, or a hang);
* in the GUI thread, but in the middle of a Qt call that walks many widgets and calls back into Python
  (``setStyleSheet`` repolishing every widget, say): a widget freed there is deleted under Qt's feet.

So automatic collection is turned off and a GUI-thread timer collects instead, each generation whose count is
past the threshold automatic collection would have used: collection only ever happens between events.
:func:`install` starts it for the life of the process (the application calls it at start; every controller
calls it before starting its thread). It needs only Qt's core module, so the application can start its model
worker before the plotting library and the window's modules are imported.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QThread, QTimer

_timer: QTimer | None = None


def install(interval_s: float = 0.5) -> None:
    """Collect only on a GUI-thread timer from now on (idempotent; needs a QApplication)."""
    global _timer
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        raise RuntimeError("gui_gc.install() must be called from the GUI thread of a QApplication")
    gc.disable()
    if _timer is None:
        _timer = QTimer()
        _timer.setInterval(int(interval_s * 1000))
        _timer.timeout.connect(collect_if_due)
    if not _timer.isActive():
        _timer.start()


def installed() -> bool:
    """True while collection happens only on the GUI thread's timer."""
    return _timer is not None and _timer.isActive() and not gc.isenabled()


def collect_if_due() -> None:
    """What the timer does: collect the youngest generation once its count passes automatic collection's
    threshold, and each older one whose count also does (as the interpreter would). Also for safe points
    outside the event loop, such as between tests."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in range(3):
        if counts[generation] <= thresholds[generation]:
            break
        gc.collect(generation)


__all__ = ["install", "installed", "collect_if_due"]

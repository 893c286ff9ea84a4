"""Scenes: a small JSON file that restores a view for a lecture — text, visible view, layer, head, position,
sliders. The window collects ``panels`` state from each panel's ``scene_state()`` and gives it back through
``apply_scene_state()``; unknown keys are ignored so old scenes keep loading.
"""

from __future__ import annotations

import json
import logging
import math
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from explainer.core.errors import UserError

log = logging.getLogger(__name__)
SCENE_VERSION = 1
ASSET_SCENES = Path(__file__).resolve().parents[2] / "assets" / "scenes"
MAX_SCENE_BYTES = 64 * 2**20  # a scene holds one text (a model reads at most a few thousand tokens of it)
WIDGET_INT = 2**31 - 1  # the largest number a Qt widget or signal holds (a C int)


def within_limits(value):
    """``value`` (read from JSON) with every number a view cannot hold replaced by None: integers beyond a C int,
    and floats that are not finite or beyond it. The views then treat them as any other missing or wrong-typed
    setting (they are left as they are) instead of failing on a value no control can show."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -WIDGET_INT - 1 <= value <= WIDGET_INT else None
    if isinstance(value, float):
        return value if math.isfinite(value) and abs(value) <= WIDGET_INT else None
    if isinstance(value, list):
        return [within_limits(v) for v in value]
    if isinstance(value, dict):
        return {k: within_limits(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Scene:
    title: str
    text: str
    parse_specials: bool = False
    start_token: bool = True
    view: str = ""  # the tab / panel to bring to the front ("attention", "embeddings", "chat", …)
    note: str = ""  # one line for the lecturer, shown in the status bar when the scene opens
    panels: dict = field(default_factory=dict)  # panel key -> that panel's scene_state()
    version: int = SCENE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        if not isinstance(data, dict):
            raise UserError("This file is not an explainer scene (a scene is a JSON object with a text).")
        if "text" not in data:
            raise UserError("This scene file has no text; it is not an explainer scene.")
        if not isinstance(data["text"], str):
            raise UserError("This scene file's text is not a string; it is not an explainer scene.")
        try:
            version = int(data.get("version", 1))
        except (TypeError, ValueError):
            raise UserError("This scene file's version is not a number; it is not an explainer scene.") from None
        if version > SCENE_VERSION:
            raise UserError("This scene was saved by a newer explainer; update explainer to open it.")
        panels = data.get("panels", {})
        return cls(
            title=str(data.get("title", "Untitled scene")),
            text=data["text"],
            parse_specials=bool(data.get("parse_specials", False)),
            start_token=bool(data.get("start_token", True)),
            view=str(data.get("view", "")),
            note=str(data.get("note", "")),
            panels=panels if isinstance(panels, dict) else {},
        )


def save_scene(scene: Scene, path: str | Path) -> Path:
    from explainer.core.gguf_loader import atomic_write_bytes

    p = Path(path)
    try:
        atomic_write_bytes(p, lambda tmp: tmp.write_text(scene.to_json(), encoding="utf-8"))
    except OSError as e:
        raise UserError(f"The scene cannot be saved to {p} ({e.strerror}); choose another folder.") from None
    return p


def load_scene(path: str | Path) -> Scene:
    p = Path(path)
    try:
        info = p.stat()
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{p} is a folder; choose a scene file (.json).")
        if not stat.S_ISREG(info.st_mode):  # a device or a pipe: endless, or waiting forever for a writer
            raise UserError(f"{p} is not a regular file; choose a scene file (.json).")
        if info.st_size > MAX_SCENE_BYTES:
            raise UserError(
                f"{p.name} is {info.st_size / 2**20:,.0f} MB; a scene file is at most {MAX_SCENE_BYTES // 2**20} MB, "
                "so this is not an explainer scene."
            )
        data = json.loads(p.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"The scene file {p} does not exist.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"The scene file {p} cannot be read ({getattr(e, 'strerror', None) or 'not text'}).") from None
    except (json.JSONDecodeError, RecursionError):  # (arrays nested thousands deep)
        raise UserError(f"{p.name} is not a valid scene file (it is not JSON).") from None
    return Scene.from_dict(data)


def lecture_set(folder: str | Path = ASSET_SCENES) -> list[tuple[Path, Scene]]:
    """The shipped lecture scenes in file-name order; a damaged file is left out (and logged), not fatal."""
    out = []
    for p in sorted(Path(folder).glob("*.json")):
        try:
            out.append((p, load_scene(p)))
        except UserError as e:
            log.warning("leaving out the lecture scene %s: %s", p, e)
    return out


def _count(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def scene_summary(path: str | Path, scene: Scene) -> dict:
    """What a scene shows, numbered as the window shows it: ``layer`` / ``head`` of the attention view counted
    from 1 (None where the scene leaves them as they are), ``embedding_layer`` as the map's slider shows it
    (0 = input embeddings), ``position`` the selected token (0 = the first, None = the end), ``seed`` of the
    scene's sampled choices, ``knocked_out`` the heads it switches off as [layer, head] from 1."""
    panels = scene.panels if isinstance(scene.panels, dict) else {}

    def state(key: str) -> dict:
        v = panels.get(key)
        return v if isinstance(v, dict) else {}

    att = state("attention") or state("walkthrough")
    layer, head = _count(att.get("layer")), _count(att.get("head"))
    nxt = state("next_token")
    t = nxt.get("temperature")
    out = att.get("knocked_out")
    knocked = (
        sorted([int(la) + 1, int(h) + 1] for la, h in out if _count(la) is not None and _count(h) is not None)
        if isinstance(out, list) and all(isinstance(p, list) and len(p) == 2 for p in out)
        else []
    )
    return {
        "name": Path(path).stem,
        "title": scene.title,
        "note": scene.note,
        "view": scene.view,
        "layer": None if layer is None else layer + 1,
        "head": None if head is None else head + 1,
        "embedding_layer": _count(state("embeddings").get("layer")),
        "position": _count(nxt.get("position")),
        "temperature": float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None,
        "seed": _count(nxt.get("seed")),
        "knocked_out": knocked,
        "text": scene.text,
    }

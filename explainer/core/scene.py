"""Scenes: a small JSON file that restores a view for a lecture — text, visible view, layer, head, position,
sliders. The window collects ``panels`` state from each panel's ``scene_state()`` and gives it back through
``apply_scene_state()``; unknown keys are ignored so old scenes keep loading.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from explainer.core.errors import UserError

SCENE_VERSION = 1
ASSET_SCENES = Path(__file__).resolve().parents[2] / "assets" / "scenes"


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
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise UserError("This scene file has no text; it is not an explainer scene.")
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
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"The scene file {p} does not exist.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"The scene file {p} cannot be read ({getattr(e, 'strerror', None) or 'not text'}).") from None
    except json.JSONDecodeError:
        raise UserError(f"{p.name} is not a valid scene file (it is not JSON).") from None
    return Scene.from_dict(data)


def lecture_scenes() -> list[tuple[Path, Scene]]:
    """The lecture set shipped in assets/scenes, in file-name order."""
    out = []
    for p in sorted(ASSET_SCENES.glob("*.json")):
        out.append((p, load_scene(p)))
    return out

"""The window's teaching tabs, presenter mode, scenes, export and analysis menu, installed by one call at the end of
its construction.

- ``window.jobs``: functions run with the engine on the model's worker thread (``runtime.jobs``);
- ``window.teach``: the views as tabs under the editor, Live + teaching views (``ui.teach_area``);
- ``window.presenter``: presenter mode and zoom, the caption strip (``ui.presenter``);
- ``window.scenes``: open / save / lecture scenes (``ui.scenes_ui``);
- ``window.exports``: export the view as PNG / SVG / data (``ui.export_ui``);
- ``window.analysis``: special tokens, start token and backend in the View menu (``ui.analysis_menu``);
- ``window.models_menu``: open a model folder, recent and local models in the File menu (``ui.models_menu``).

Menus: File gains the scene and export items before its last separator (above Quit); View gains the views
(Ctrl+1…7), presenter mode and zoom, and the analysis settings.
"""

from __future__ import annotations

from explainer.runtime.jobs import WorkerJobs
from explainer.ui import models_menu
from explainer.ui.analysis_menu import AnalysisMenu
from explainer.ui.export_ui import ExportMenu
from explainer.ui.presenter import Presenter
from explainer.ui.scenes_ui import SceneMenu
from explainer.ui.teach_area import TeachArea


def install(window, settings=None) -> None:
    window.jobs = WorkerJobs(window.controller, window)
    window.teach = teach = TeachArea(window, settings)
    window.presenter = presenter = Presenter(window)
    window.scenes = scenes = SceneMenu(window, teach, presenter)
    window.exports = exports = ExportMenu(window, teach)

    file_menu, view_menu = window.file_menu, window.view_menu
    separators = [a for a in file_menu.actions() if a.isSeparator()]
    quit_sep = separators[-1] if separators else None  # the one above Quit; None: append
    for part in (scenes, exports):
        if quit_sep is not None:
            file_menu.insertSeparator(quit_sep)
        else:
            file_menu.addSeparator()
        part.add_menu_actions(file_menu, quit_sep)

    view_menu.addSeparator()
    teach.add_menu_actions(view_menu)
    view_menu.addSeparator()
    presenter.add_menu_actions(view_menu)
    view_menu.addSeparator()
    window.analysis = AnalysisMenu(window, view_menu)
    models_menu.install(window, settings)  # File: model folder, recent models, models on this computer

    window.themeChanged.connect(teach.set_theme)
    window.themeChanged.connect(presenter.on_theme_changed)
    teach.restore_view()

"""The application's style is set once per theme: setting it again re-polishes every widget of the window."""

from PySide6.QtWidgets import QApplication

from explainer.ui import theme as th


def test_same_theme_is_not_applied_again_and_another_one_is(qapp):
    app = QApplication.instance()
    before = app.styleSheet()
    try:
        th.apply_theme(app, th.DARK)
        assert th.DARK.muted in app.styleSheet()
        app.setStyleSheet("QLabel { }")  # a marker: applying DARK again must not replace it
        th.apply_theme(app, th.DARK)
        assert app.styleSheet() == "QLabel { }"
        th.apply_theme(app, th.LIGHT)
        assert th.LIGHT.muted in app.styleSheet() and app.palette().window().color().name() == th.LIGHT.surface
    finally:
        th._APPLIED.pop(id(app), None)
        th.apply_theme(app, th.LIGHT)
        app.setStyleSheet(before)

"""The application's style sheet is set only when it changes: setting it re-polishes every widget of the window."""

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QLabel

from explainer.ui import theme as th


class StyleChanges(QObject):
    def __init__(self):
        super().__init__()
        self.n = 0

    def eventFilter(self, obj, event):
        if event.type() == QEvent.StyleChange:
            self.n += 1
        return False


def test_same_theme_is_not_applied_again_and_another_one_is(qapp):
    app = QApplication.instance()
    before = app.styleSheet()
    label = QLabel("help")
    label.setObjectName("panelHelp")
    label.show()
    seen = StyleChanges()
    label.installEventFilter(seen)
    try:
        th.apply_theme(app, th.DARK)
        assert th.DARK.muted in app.styleSheet()
        seen.n = 0
        th.apply_theme(app, th.DARK)
        assert seen.n == 0  # the same theme: nothing styled again
        th.apply_theme(app, th.LIGHT)
        assert seen.n > 0
        assert th.LIGHT.muted in app.styleSheet() and app.palette().window().color().name() == th.LIGHT.surface
        assert label.palette().windowText().color().name() == th.LIGHT.muted  # the help text's colour
        app.setStyleSheet("")  # taken away (the presenter does so to restyle once with new fonts) …
        th.apply_theme(app, th.LIGHT)
        assert app.styleSheet() == th.style_sheet(th.LIGHT)  # … the same theme puts it back
    finally:
        label.removeEventFilter(seen)
        label.close()
        th.apply_theme(app, th.LIGHT)
        app.setStyleSheet(before)

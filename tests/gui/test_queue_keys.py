"""Navigation keys navigate the queue; reordering has its own shortcuts."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtTest import QTest

from ossdesk.ui.main_window import MainWindow
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_main_window import PROFILE, MemoryProfiles, make_tree

ALT = Qt.KeyboardModifier.AltModifier
CTRL = Qt.KeyboardModifier.ControlModifier


def open_with_five(qtbot, tmp_path) -> tuple[MainWindow, FakeEngine, list[int]]:
    engine = FakeEngine()
    window = MainWindow(engine, profile_store=MemoryProfiles([PROFILE]))
    qtbot.addWidget(window)
    window.row_actions.confirm = lambda title, text: True  # type: ignore[method-assign]
    window.ask_quit = lambda active: "pause"  # type: ignore[method-assign]
    window.show()
    qtbot.waitUntil(lambda: window.destination_bar.profiles_loaded, timeout=3000)
    make_tree(tmp_path)
    for name in ("one", "two"):
        (tmp_path / f"{name}.txt").write_text(name)
    window.add_paths([str(tmp_path / "notes.txt"), str(tmp_path / "album"),
                      str(tmp_path / "one.txt"), str(tmp_path / "two.txt")])
    qtbot.waitUntil(lambda: window.model.rowCount() == 5, timeout=5000)
    return window, engine, [int(i) for i in window.model.ids()]


def put_cursor(window: MainWindow, row: int) -> None:
    window.view.setFocus()
    window.view.selectionModel().setCurrentIndex(
        window.model.index(row, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )


def test_ctrl_home_and_ctrl_end_move_the_cursor_not_the_upload(qtbot, tmp_path):
    window, engine, ids = open_with_five(qtbot, tmp_path)
    put_cursor(window, 2)
    QTest.keyClick(window.view, Qt.Key.Key_End, CTRL)
    assert window.view.currentIndex().row() == 4
    QTest.keyClick(window.view, Qt.Key.Key_Home, CTRL)
    assert window.view.currentIndex().row() == 0
    put_cursor(window, 2)
    QTest.keyClick(window.view, Qt.Key.Key_End)
    assert window.view.currentIndex().row() == 4
    QTest.keyClick(window.view, Qt.Key.Key_Home)
    assert window.view.currentIndex().row() == 0
    QTest.keyClick(window.view, Qt.Key.Key_PageDown)
    assert window.view.currentIndex().row() == 4
    QTest.keyClick(window.view, Qt.Key.Key_PageUp)
    assert window.view.currentIndex().row() == 0
    # Nothing was reordered, nothing was sent to the engine.
    assert [int(i) for i in window.model.ids()] == ids
    assert not [c for c in engine.calls if str(c[0]).startswith("move")]


def test_reordering_has_its_own_shortcuts_shown_in_the_menu(qtbot, tmp_path):
    window, engine, ids = open_with_five(qtbot, tmp_path)
    shortcuts = {a.objectName(): a.shortcut().toString() for a in window.row_actions.actions}
    assert shortcuts["moveTop"] == "Alt+Home"
    assert shortcuts["moveBottom"] == "Alt+End"
    assert shortcuts["moveUp"] == "Alt+Up"
    assert shortcuts["moveDown"] == "Alt+Down"
    # No reordering shortcut is one an item view uses to move the cursor or select.
    navigation = {"Home", "End", "Up", "Down", "PgUp", "PgDown", "Ctrl+Home", "Ctrl+End",
                  "Shift+Home", "Shift+End", "Ctrl+Up", "Ctrl+Down", "Shift+Up", "Shift+Down"}
    assert not navigation & set(shortcuts.values())
    menu = window.row_actions.context_menu()
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    for wanted in ("Move to top", "Move up", "Move down", "Move to bottom"):
        assert wanted in texts

    put_cursor(window, 2)
    QTest.keyClick(window.view, Qt.Key.Key_Up, ALT)
    assert [int(i) for i in window.model.ids()] == [ids[0], ids[2], ids[1], ids[3], ids[4]]
    assert window.row_actions.selected_rows()[0].id == ids[2]
    QTest.keyClick(window.view, Qt.Key.Key_Down, ALT)
    QTest.keyClick(window.view, Qt.Key.Key_Down, ALT)
    assert [int(i) for i in window.model.ids()] == [ids[0], ids[1], ids[3], ids[2], ids[4]]
    QTest.keyClick(window.view, Qt.Key.Key_End, ALT)
    assert [int(i) for i in window.model.ids()][-1] == ids[2]
    assert ("move_bottom", [ids[2]]) in engine.calls
    QTest.keyClick(window.view, Qt.Key.Key_Home, ALT)
    assert int(window.model.ids()[0]) == ids[2]
    assert ("move_top", [ids[2]]) in engine.calls
    # At the top, "Move up" does nothing.
    QTest.keyClick(window.view, Qt.Key.Key_Up, ALT)
    assert int(window.model.ids()[0]) == ids[2]

"""The desktop window (PySide6). Importing this package loads no Qt module: the entry
point is :func:`ossdesk.ui.app.run`, which the ``ossdesk`` command calls."""

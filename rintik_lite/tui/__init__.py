"""The terminal UI (`rintik-lite tui`): Textual, one screen per module, styles in app.tcss."""

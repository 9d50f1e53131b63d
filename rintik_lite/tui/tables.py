"""The tables the screens show, and how values look in their cells.

`VirtualTable` renders only the rows on screen (Textual's line API, as toolong's log view
does), so 10,000 projects paint and filter at once: `DataTable` measures every cell of every
row it is given (2.6 s for 10,000 rows of 5 cells on the benchmark machine). `LiveTable` is
a `DataTable` for the short lists (resources, invoice lines, prices, events) that refreshes
in place: same rows, no repaint; changed rows, cursor and scroll kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from rich.cells import cell_len, set_cell_size
from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable

# --- cells ---------------------------------------------------------------------------------


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago, k9s style: 42s, 5m, 3h, 12d ("" for None; "0s" for the future)."""
    if moment is None:
        return ""
    seconds = max(int((now - moment).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def duration(span: timedelta) -> str:
    """A running time: 3d 4h, 5h 12m, 7m."""
    minutes = int(span.total_seconds()) // 60
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def when(moment: datetime | None) -> str:
    """A UTC time to the minute: 2026-11-21 09:30."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def short_when(moment: datetime | None, now: datetime) -> str:
    """11-03 09:30 this year, else the date: 2025-12-30."""
    if moment is None:
        return ""
    return moment.strftime("%m-%d %H:%M" if moment.year == now.year else "%Y-%m-%d")


def day(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d")


def money(value: Decimal | str | None) -> str:
    """Amounts as the services write them: exact decimal strings."""
    return "" if value is None else str(value)


# --- the virtual table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """`width` cells, or a share (`flex`) of what the fixed columns leave, up to `most`."""

    key: str
    label: str
    width: int = 0
    flex: int = 0
    least: int = 4
    most: int = 1000
    align: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[str, ...]


GAP = 1  # cells between columns


def layout(columns: Sequence[Column], width: int) -> list[int]:
    """Each column's width on a line `width` cells wide."""
    widths = [c.width for c in columns]
    flexible = [i for i, c in enumerate(columns) if c.flex]
    room = width - sum(widths) - GAP * (len(columns) - 1) - 1  # a cell of margin on the left
    shares = sum(columns[i].flex for i in flexible) or 1
    for i in flexible:
        column = columns[i]
        widths[i] = min(column.most, max(column.least, room * column.flex // shares))
    spare = room - sum(widths[i] for i in flexible)
    for i in flexible:  # what the capped columns left goes to the first uncapped one
        if spare > 0 and widths[i] < columns[i].most:
            grow = min(spare, columns[i].most - widths[i])
            widths[i] += grow
            spare -= grow
    return widths


def fit(text: str, width: int, align: str) -> str:
    """`text` in exactly `width` cells: cut with an ellipsis, or padded."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if align == "right" else text + pad


class VirtualTable(ScrollView, can_focus=False):
    """Rows of plain text cells under a fixed header, with a row cursor.

    Only the lines on screen are rendered, whatever the number of rows. The screen owns
    the data: it sorts and filters, then calls `show()`. It is not focusable (the screen's
    filter keeps the keyboard); the screen moves the cursor with `move()`.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--odd",
    }
    cursor_row: reactive[int] = reactive(0, always_update=True)

    @dataclass
    class Selected(Message):
        """Enter or a double click on a row."""

        key: str

    @dataclass
    class HeaderClicked(Message):
        column: str

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.rows: list[Row] = []
        self._widths: tuple[int, list[int]] | None = None  # (line width, column widths)
        self._styles: dict[str, Style] | None = None

    # --- data ------------------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        if list(columns) != self.columns:
            self.columns = list(columns)
            self._widths = None
            self.refresh()

    def show(self, rows: Sequence[Row]) -> None:
        """Replace the rows; the cursor stays on the same key when it is still there."""
        key = self.cursor_key
        self.rows = list(rows)
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        index = 0
        if key is not None:
            index = next((i for i, row in enumerate(self.rows) if row.key == key), 0)
        self.cursor_row = index
        self.refresh()

    @property
    def cursor_key(self) -> str | None:
        if 0 <= self.cursor_row < len(self.rows):
            return self.rows[self.cursor_row].key
        return None

    # --- cursor ----------------------------------------------------------------------------

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self.rows) - 1))

    def watch_cursor_row(self, row: int) -> None:
        visible = max(self.scrollable_content_region.height - 1, 1)
        top = round(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False)
        self.refresh()

    def move(self, delta: int) -> None:
        self.cursor_row = self.cursor_row + delta

    def page(self, direction: int) -> None:
        self.move(direction * max(self.scrollable_content_region.height - 2, 1))

    def select(self) -> None:
        if (key := self.cursor_key) is not None:
            self.post_message(self.Selected(key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = 1
            for column, width in zip(
                self.columns, layout(self.columns, self._width()), strict=True
            ):
                if x <= offset.x < x + width + GAP:
                    self.post_message(self.HeaderClicked(column.key))
                    return
                x += width + GAP
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self.rows):
            self.cursor_row = row
            if event.chain >= 2:
                self.select()

    # --- rendering -------------------------------------------------------------------------

    def _width(self) -> int:
        return self.scrollable_content_region.width

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None

    def _style(self, name: str) -> Style:
        """The base style plus a component class's, computed once per theme or CSS change."""
        if self._styles is None:
            base = self.rich_style
            self._styles = {"": base}
            for component in ("header", "odd", "cursor"):
                part = self.get_component_rich_style(f"virtual-table--{component}")
                self._styles[component] = base + part
            self._styles["odd cursor"] = self._styles["odd"] + self._styles["cursor"]
        return self._styles[name]

    def render_line(self, y: int) -> Strip:
        width = self._width()
        if self._widths is None or self._widths[0] != width:
            self._widths = (width, layout(self.columns, width))
        widths = self._widths[1]
        if y == 0:
            cells = [c.label for c in self.columns]
            return self._strip(cells, widths, width, self._style("header"))
        index = round(self.scroll_y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self._style(""))
        name = " ".join(
            part for part, on in (("odd", index % 2), ("cursor", index == self.cursor_row)) if on
        )
        return self._strip(self.rows[index].cells, widths, width, self._style(name))

    def _strip(
        self, cells: Sequence[str], widths: Sequence[int], width: int, style: Style
    ) -> Strip:
        parts = [" "]
        for column, cell, cell_width in zip(self.columns, cells, widths, strict=False):
            parts.append(fit(cell, cell_width, column.align))
        text = (" " * GAP).join(parts[1:])
        line = fit(" " + text, width, "left")
        return Strip([Segment(line, style)], width)


# --- live DataTable ------------------------------------------------------------------------


class LiveTable(DataTable[Any]):
    """A row-cursor DataTable of fixed-width columns whose `show()` refreshes in place.

    Fixed widths (cells are cut to fit) keep the columns still as rows come and go, and
    make what is drawn independent of when DataTable measures its cells.
    """

    def __init__(self, columns: Sequence[tuple[str, int]], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.widths = [width for _, width in columns]
        self._columns = columns
        self._shown: list[tuple[str, tuple[RenderableType, ...]]] | None = None

    def on_mount(self) -> None:
        for label, width in self._columns:
            self.add_column(label, width=width)

    def show(self, rows: Sequence[tuple[str, Sequence[RenderableType]]]) -> None:
        """Rows as (key, cells). Nothing happens when they are what is shown."""
        wanted = [(key, tuple(cells)) for key, cells in rows]
        if wanted == self._shown:
            return
        self._shown = wanted
        key = self.cursor_key
        scroll_y = self.scroll_y
        self.clear()
        for row_key, cells in wanted:
            fitted = [self._fit(cell, w) for cell, w in zip(cells, self.widths, strict=True)]
            self.add_row(*fitted, key=row_key)
        keys = [row_key for row_key, _ in wanted]
        if key in keys:
            self.move_cursor(row=keys.index(key), animate=False, scroll=False)
        self.call_after_refresh(self.scroll_to, y=scroll_y, animate=False)

    @staticmethod
    def _fit(cell: RenderableType, width: int) -> RenderableType:
        if isinstance(cell, str):
            return fit(cell, width, "left").rstrip()
        if isinstance(cell, Text) and cell.cell_len > width:
            cut = cell.copy()
            cut.truncate(width, overflow="ellipsis")
            return cut
        return cell

    @property
    def cursor_key(self) -> str | None:
        if self.row_count == 0 or not self.is_valid_row_index(self.cursor_row):
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key

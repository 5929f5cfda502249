"""Spreadsheets (.xlsx, .csv/.tsv) to conversation records: the tutorial's xlsx2jsonl.py done right.

Choices, each as a person reading the sheet would expect:
- Sheet: by name, or by number counting from 1 (`--sheet 2` is the second tab); default the first.
- Header: by default the first non-empty row is a header naming the columns and is not converted
  (`--no-header`: every row is data). Columns are given by letter (`A`, `D`, `AB`: one to three
  letters always mean a column letter) or by any other header text, matched ignoring case.
- Several input columns are joined with `joiner` (a newline by default), empty ones left out.
- Merged cells: a merged range's value belongs to every row it covers, in the first selected
  column it covers (one question spanning three answer rows gives three records; a range spanning
  two selected columns counts once).
- Rows whose input and output cells are all empty are blank and ignored; rows with only one of
  them empty are skipped and reported by row number.
- Cell values read as `xlsx.py` describes (`12` not `12.0`, ISO dates, trimmed); CSV cells are
  text already and are only trimmed.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, Sequence

from openpyxl.utils.cell import column_index_from_string, get_column_letter

from datasets_builders.convert import Message
from datasets_builders.errors import DataError
from datasets_builders.records import not_utf8
from datasets_builders.text import plural, tidy
from datasets_builders.xlsx import Merge, XlsxSheet

_LETTERS = re.compile(r"[A-Za-z]{1,3}")
_BOM = "\ufeff"


class Table(Protocol):
    label: str

    def rows(self, columns: set[int] | None = None) -> Iterator[tuple[int, dict[int, str]]]: ...

    def merged(self) -> list[Merge]: ...


class CsvTable:
    """A CSV (or, named .tsv, tab-separated) file as a table: rows are numbered as a spreadsheet
    program shows them, counting a quoted multi-line cell as one row."""

    def __init__(self, path: str | Path, delimiter: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file")
        self.label = str(self.path)
        self.delimiter = delimiter or ("\t" if self.path.suffix.lower() == ".tsv" else ",")

    def rows(self, columns: set[int] | None = None) -> Iterator[tuple[int, dict[int, str]]]:
        with open(self.path, "rb") as f:
            reader = csv.reader(self._lines(f), delimiter=self.delimiter)
            try:
                for number, row in enumerate(reader, 1):
                    yield number, {
                        i: text for i, cell in enumerate(row, 1)
                        if (columns is None or i in columns) and (text := tidy(cell))
                    }
            except csv.Error as exc:
                raise DataError(f"{self.path} line {reader.line_num}: {exc}") from None

    def _lines(self, f) -> Iterator[str]:
        offset = 0
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{self.path} line {number}: {not_utf8(raw, exc, offset)}") from None
            offset += len(raw)
            yield line[1:] if number == 1 and line.startswith(_BOM) else line

    def merged(self) -> list[Merge]:
        return []


def open_table(path: str | Path, sheet: str | None = None, delimiter: str | None = None) -> Table:
    """The table to read: a CSV/TSV file by its suffix, otherwise a sheet of an .xlsx workbook."""
    if Path(path).suffix.lower() in (".csv", ".tsv"):
        if sheet is not None:
            raise DataError(f"{path}: a CSV file has no sheets (drop --sheet)")
        return CsvTable(path, delimiter)
    return XlsxSheet(path, sheet)


@dataclass
class SheetConversion:
    """Streams a table's rows as records (`records()`), counting what it converts and skips."""

    table: Table
    inputs: Sequence[str] = ("A",)
    output: str = "B"
    system: str | None = None
    header: bool = True
    joiner: str = "\n"
    header_row: int = 0
    header_cells: dict[int, str] = field(default_factory=dict)
    converted: int = 0
    blank: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.header:
            self.header_row, self.header_cells = next(
                ((n, cells) for n, cells in self.table.rows() if cells), (0, {}))
        self.input_columns = [self._column(spec) for spec in self.inputs]
        self.output_column = self._column(self.output)
        if self.output_column in self.input_columns:
            raise DataError(f"{self.table.label}: column {self.describe(self.output_column)} is both an input and the output")

    def describe(self, column: int) -> str:
        """`D "Answer"`: a column's letter and header text."""
        name = self.header_cells.get(column)
        return f'{get_column_letter(column)} "{name}"' if name else get_column_letter(column)

    def _column(self, spec: str) -> int:
        spec = spec.strip()
        if _LETTERS.fullmatch(spec) and column_index_from_string(spec.upper()) <= 16384:
            return column_index_from_string(spec.upper())
        named = [c for c, text in self.header_cells.items() if text.casefold() == spec.casefold()]
        if len(named) > 1:
            raise DataError(f'{self.table.label}: header "{spec}" names several columns '
                            f'({", ".join(get_column_letter(c) for c in named)}): give a letter')
        if not named:
            raise DataError(f'{self.table.label}: no column "{spec}"; {self._headers()}')
        return named[0]

    def _headers(self) -> str:
        if not self.header:
            return "without a header row (--no-header) give columns by letter (A, B, ...)"
        if not self.header_cells:
            return "the sheet is empty"
        listed = ", ".join(self.describe(c) for c in sorted(self.header_cells))
        return f"its header row (row {self.header_row}) has: {listed}"

    def records(self) -> Iterator[list[Message]]:
        """The records, one per row with both an input and an output. Raises DataError at the end
        when a selected column was empty in every row or no row converted, so no output is kept."""
        selected = [*self.input_columns, self.output_column]
        merges = _MergeFill(self.table.merged(), set(selected), self.header_row)
        unseen = set(selected)
        for number, cells in self.table.rows(set(selected) | merges.sources):
            if number <= self.header_row:
                continue
            merges.fill(number, cells)
            text = self.joiner.join(cells[c] for c in self.input_columns if c in cells)
            answer = cells.get(self.output_column, "")
            if not text and not answer:
                self.blank += 1
                continue
            if unseen:
                unseen.difference_update(cells)
            if not text or not answer:
                self.skipped.append((number, "input" if not text else "output"))
                continue
            self.converted += 1
            system = [{"role": "system", "content": self.system}] if self.system else []
            yield [*system, {"role": "user", "content": text}, {"role": "assistant", "content": answer}]
        for column in selected:
            if column in unseen:
                role = "output" if column == self.output_column else "input"
                raise DataError(f"{self.table.label}: the {role} column {self.describe(column)} is empty in every row; "
                                f"{self._headers()}")
        if not self.converted:
            raise DataError(f"{self.table.label}: no row has both an input and an output")

    def summary(self, verbose: bool = False) -> str:
        """What was converted and skipped, for the user; the skipped rows themselves if verbose."""
        inputs = " + ".join(self.describe(c) for c in self.input_columns)
        lines = [f"{self.table.label}: input {inputs}, output {self.describe(self.output_column)}"
                 + (f" (header row {self.header_row})" if self.header_row else " (no header row)")]
        if self.skipped:
            lines.append(f"skipped {plural(len(self.skipped), 'row')} with an empty input or output"
                         + ("" if verbose else " (--verbose lists them)"))
            if verbose:
                lines += [f"  row {number}: empty {side}" for number, side in self.skipped]
        if self.blank:
            lines.append(f"ignored {plural(self.blank, 'blank row')}")
        return "\n".join(lines)


class _MergeFill:
    """Gives each row covered by a merged range the range's value, in the first selected column
    the range covers; the other selected columns it covers read as empty."""

    def __init__(self, merges: list[Merge], selected: set[int], header_row: int) -> None:
        self.pending: list[tuple[int, int, int, int, int]] = []  # min_row, max_row, min_col, max_col, owner
        for min_col, min_row, max_col, max_row in merges:
            covered = sorted(c for c in selected if min_col <= c <= max_col)
            if covered and max_row > header_row and (max_row > min_row or len(covered) > 1):
                self.pending.append((min_row, max_row, min_col, max_col, covered[0]))
        self.pending.sort(reverse=True)  # popped from the end, first rows first
        self.sources = {p[2] for p in self.pending}  # the top-left cells hold the values
        self.active: list[tuple[int, int, int, int, str]] = []  # max_row, min_col, max_col, owner, value

    def fill(self, row: int, cells: dict[int, str]) -> None:
        if not self.pending and not self.active:
            return
        self.active = [a for a in self.active if a[0] >= row]
        while self.pending and self.pending[-1][0] <= row:
            min_row, max_row, min_col, max_col, owner = self.pending.pop()
            if max_row >= row:
                self.active.append((max_row, min_col, max_col, owner, cells.get(min_col, "")))
        for _, min_col, max_col, owner, value in self.active:
            for column in [c for c in cells if min_col <= c <= max_col]:
                del cells[column]
            if value:
                cells[owner] = value

"""Streaming reader for .xlsx worksheets: rows one at a time, only the columns asked for decoded.

Why not openpyxl's read-only worksheets: they turn every cell of every row into Python objects, and
opening a workbook whose sheet has no `<dimension>` parses the whole sheet once just to size it.
This reader walks the sheet XML with lxml's iterparse, which hands Python only the row elements,
drops each row once read, and decodes only the cells it is asked for: faster than openpyxl and
`pandas.read_excel` on the same file, in constant memory (bench/bench_sheet.py). openpyxl still
supplies what needs its knowledge of Excel: which number formats are dates, serial numbers to dates.

Cells read as a person sees them: text as is; whole numbers without a decimal point
(`12`, not `12.0`) and other numbers to 15 significant digits, as Excel's General format shows them;
dates `2024-01-31`, date-times `2024-01-31 14:30:00`, times `14:30:00`, durations `26:00:00`;
booleans `TRUE`/`FALSE`; error values as shown (`#N/A`); formulas their cached (last calculated)
value (a formula saved by a program that never calculated it has none and reads as empty). Number
formats other than dates (percent, currency, thousands separators) are not applied: 0.5 shown as
50% reads `0.5`. Line breaks become `\\n`; surrounding whitespace is trimmed.
"""
from __future__ import annotations

import datetime as dt
import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from xml.etree.ElementTree import Element, ParseError, fromstring

from lxml import etree
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.cell import column_index_from_string, range_boundaries
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

from datasets_builders.errors import DataError
from datasets_builders.text import tidy

_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
# Built-in number formats 27-36 and 50-58 are the East Asian locales' date formats (ECMA-376 18.8.30).
_CJK_DATE_FORMATS = frozenset(range(27, 37)) | frozenset(range(50, 59))
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Za-z]+[0-9]+:[A-Za-z]+[0-9]+)"')
_DIGITS = "0123456789"

Merge = tuple[int, int, int, int]  # min_col, min_row, max_col, max_row (1-based)


@dataclass(frozen=True)
class _SheetPart:
    name: str
    member: str | None  # the XML part inside the zip
    kind: str  # "worksheet", "chartsheet", ...


class XlsxSheet:
    """One worksheet of an .xlsx file: `rows()` streams it, `merged()` lists its merged ranges."""

    def __init__(self, path: str | Path, sheet: str | None = None) -> None:
        self.path = Path(path)
        self._zip = _open_zip(self.path)
        try:
            self._load(sheet)
        except BaseException:
            self._zip.close()
            raise

    def _load(self, sheet: str | None) -> None:
        workbook = _workbook_part(self._zip, self.path)
        root = self._xml(workbook)
        ns = _namespace(root)
        if root.tag != f"{ns}workbook":
            raise DataError(f"{self.path}: not an Excel .xlsx file (a zip archive without a workbook: a .docx or .pptx?)")
        self._tag = {name: f"{ns}{name}" for name in ("row", "c", "v", "is", "t", "r", "si")}
        rels = self._relationships(workbook)
        self.sheets = [
            _SheetPart(el.get("name", ""), *rels.get(_rel_id(el), (None, "unknown part")))
            for el in root.iter(f"{ns}sheet")
        ]
        self.part = self._pick(sheet)
        self.name = self.part.name
        self.label = f'{self.path} sheet "{self.name}"'
        props = root.find(f"{ns}workbookPr")
        date1904 = props is not None and props.get("date1904", "").lower() in ("1", "true")
        self._epoch = CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900
        shared = [member for member, kind in rels.values() if kind == "sharedStrings"]
        styles = [member for member, kind in rels.values() if kind == "styles"]
        self._strings = self._shared_strings(shared[0]) if shared else []
        self._dates, self._durations = self._date_styles(styles[0]) if styles else (set(), set())

    # -- the workbook's parts ------------------------------------------------------------------

    def _xml(self, member: str) -> Element:
        try:
            return fromstring(self._zip.read(member))
        except KeyError:
            raise DataError(f"{self.path}: not an Excel .xlsx file (no {member} inside)") from None
        except ParseError as exc:
            raise DataError(f"{self.path}: broken workbook ({member}: {exc})") from None

    def _relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationship id -> (zip member, kind) for the part's relationships."""
        folder, name = posixpath.split(part)
        rels_member = posixpath.join(folder, "_rels", f"{name}.rels")
        if rels_member not in self._zip.namelist():
            return {}
        out = {}
        for rel in self._xml(rels_member).iter(_PKG_REL):
            target = rel.get("Target", "")
            member = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
            out[rel.get("Id", "")] = (member, rel.get("Type", "").rsplit("/", 1)[-1])
        return out

    def _pick(self, spec: str | None) -> _SheetPart:
        if spec is None:
            part = next((s for s in self.sheets if s.kind == "worksheet"), None)
            if part is None:
                raise DataError(f"{self.path}: the workbook has no worksheet")
            return part
        names = [s.name for s in self.sheets]
        found = [s for s in self.sheets if s.name == spec] or [s for s in self.sheets if s.name.strip().casefold() == spec.strip().casefold()]
        if not found and spec.strip().isdigit() and 1 <= int(spec) <= len(self.sheets):
            found = [self.sheets[int(spec) - 1]]
        if not found:
            listed = ", ".join(f'"{n}"' for n in names)
            raise DataError(f'{self.path}: no sheet "{spec}"; the workbook has {listed} (or give a number, 1 to {len(names)})')
        if found[0].kind != "worksheet" or found[0].member is None:
            raise DataError(f'{self.path}: sheet "{found[0].name}" is a {found[0].kind}, not a worksheet of cells')
        return found[0]

    def _shared_strings(self, member: str) -> list[str]:
        t_tag = self._tag["t"]
        strings: list[str] = []
        for si in self._stream(member, self._tag["si"]):
            if len(si) == 1 and si[0].tag == t_tag and "_x" not in (text := si[0].text or ""):
                strings.append(tidy(text))  # plain text, the common case
            else:
                strings.append(tidy(self._rich_text(si)))
        return strings

    def _date_styles(self, member: str) -> tuple[set[int], set[int]]:
        """The cell style indices whose number format shows a date/time, and those showing a duration."""
        root = self._xml(member)
        ns = _namespace(root)
        custom = {int(f.get("numFmtId", -1)): f.get("formatCode", "") for f in root.iter(f"{ns}numFmt")}
        xfs = root.find(f"{ns}cellXfs")
        dates, durations = set(), set()
        for index, xf in enumerate(xfs if xfs is not None else []):
            fmt = int(xf.get("numFmtId", 0))
            code = custom.get(fmt, BUILTIN_FORMATS.get(fmt, ""))
            if code and is_timedelta_format(code):
                durations.add(index)
            elif (code and is_date_format(code)) or (fmt in _CJK_DATE_FORMATS and fmt not in custom):
                dates.add(index)
        return dates, durations

    # -- streaming -----------------------------------------------------------------------------

    def _stream(self, member: str, tag: str) -> Iterator[Any]:
        """The `tag` elements of a part, each complete, dropped from the tree once used. lxml hands
        over only the elements asked for, so Python never sees the cells' inner elements."""
        try:
            with self._zip.open(member) as source:
                for _, element in etree.iterparse(source, events=("end",), tag=tag):
                    yield element
                    element.clear()
                    while element.getprevious() is not None:
                        del element.getparent()[0]
        except etree.XMLSyntaxError as exc:
            raise DataError(f"{self.path}: broken workbook ({member}: {exc})") from None

    def rows(self, columns: set[int] | None = None) -> Iterator[tuple[int, dict[int, str]]]:
        """(row number, {column number: text}) for each row that has cells, in order; only the
        `columns` given (all when None) and only non-empty cells are included."""
        self._columns: dict[str, int] = {}
        number = 0
        for row in self._stream(self.part.member, self._tag["row"]):
            ref = row.get("r")
            number = int(ref) if ref else number + 1
            values = self._picked(row, columns) if columns else None
            if values is None:
                values = self._scanned(row, columns)
            yield number, values

    def _column(self, cell: Any) -> int | None:
        ref = cell.get("r")
        if not ref:
            return None
        letters = ref.rstrip(_DIGITS)
        column = self._columns.get(letters)
        if column is None:
            column = self._columns[letters] = column_index_from_string(letters)
        return column

    def _picked(self, row: Any, columns: set[int]) -> dict[int, str] | None:
        """The common case, fast: cells stored one per column from A, so column N is child N-1
        and the other cells are never touched. None when the row is not laid out so."""
        values = {}
        count = len(row)
        for column in columns:
            if column <= count:
                cell = row[column - 1]
                if cell.tag != self._tag["c"] or self._column(cell) != column:
                    return None
                text = self._cell_text(cell)
                if text:
                    values[column] = text
            elif count and self._column(row[count - 1]) != count:
                return None  # a gap before the last cell: a later column may be there
        return values

    def _scanned(self, row: Any, columns: set[int] | None) -> dict[int, str]:
        values = {}
        column = 0
        for cell in row:
            if cell.tag != self._tag["c"]:
                continue
            column = self._column(cell) or column + 1
            if columns is None or column in columns:
                text = self._cell_text(cell)
                if text:
                    values[column] = text
        return values

    def merged(self) -> list[Merge]:
        """The sheet's merged ranges. They are listed after all the rows, so this scans the raw
        part for them first (a fraction of the parse's cost) to keep the row pass streaming."""
        refs: set[bytes] = set()
        with self._zip.open(self.part.member) as source:
            tail = b""
            while chunk := source.read(1 << 20):
                buffer = tail + chunk
                if b"mergeCell" in buffer:
                    refs.update(_MERGE.findall(buffer))
                tail = buffer[-512:]
        return sorted(range_boundaries(ref.decode()) for ref in refs)

    # -- cells ---------------------------------------------------------------------------------

    def _rich_text(self, node: Any) -> str:
        """The text of an `si`/`is` node: plain `t`, or the `t` of each rich-text run (the phonetic
        `rPh` guides are not part of the text)."""
        parts = []
        for child in node:
            if child.tag == self._tag["t"]:
                parts.append(child.text or "")
            elif child.tag == self._tag["r"]:
                parts.append(child.findtext(self._tag["t"]) or "")
        text = "".join(parts)
        return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text else text

    def _cell_text(self, cell: Any) -> str:
        kind = cell.get("t")
        if kind == "inlineStr":
            node = cell.find(self._tag["is"])
            return tidy(self._rich_text(node)) if node is not None else ""
        value = next((child.text for child in cell if child.tag == self._tag["v"]), None)
        if not value:  # empty, or a formula never calculated
            return ""
        if kind == "s":
            try:
                return self._strings[int(value)]
            except (IndexError, ValueError):
                raise DataError(f"{self.label} cell {cell.get('r')}: refers to shared string {value}, "
                                f"which the workbook does not have") from None
        if kind is None or kind == "n":
            style = int(cell.get("s") or 0)
            if style in self._dates or style in self._durations:
                return self._date_text(value, style in self._durations)
            return number_text(value)
        if kind == "b":
            return "TRUE" if value.strip() in ("1", "true") else "FALSE"
        if kind == "d":
            try:
                return _when_text(dt.datetime.fromisoformat(value))
            except ValueError:
                return tidy(value)
        return tidy(value)  # "str" (a formula's text result), "e" (an error value such as #N/A)

    def _date_text(self, value: str, duration: bool) -> str:
        try:
            return _when_text(from_excel(float(value), self._epoch, timedelta=duration))
        except (ValueError, OverflowError):
            return number_text(value)

    def close(self) -> None:
        self._zip.close()


def number_text(value: str) -> str:
    """A stored number as Excel's General format shows it: `12`, `0.5`, `0.3` (not `0.30000000000000004`)."""
    if value.isdigit():
        return value
    try:
        number = float(value)
    except ValueError:
        return value.strip()
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return format(number, ".15g")


def _when_text(value: dt.datetime | dt.date | dt.time | dt.timedelta) -> str:
    if isinstance(value, dt.timedelta):
        seconds = round(value.total_seconds())
        sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
        return f"{sign}{seconds // 3600}:{seconds % 3600 // 60:02}:{seconds % 60:02}"
    spec = "milliseconds" if getattr(value, "microsecond", 0) else "seconds"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec=spec)
    if isinstance(value, dt.time):
        return value.isoformat(timespec=spec)
    return value.isoformat()


def _namespace(root: Element) -> str:
    """`{uri}` of the root's tag: transitional or strict OOXML, whichever the file uses."""
    return root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""


def _rel_id(element: Element) -> str:
    return next((v for k, v in element.attrib.items() if k.endswith("}id")), "")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a file") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not an Excel .xlsx file ({_what_is(path, exc)})") from None


def _what_is(path: Path, exc: Exception) -> str:
    try:
        head = path.read_bytes()[:8]
    except OSError:
        return str(exc)
    if not head:
        return "the file is empty"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old .xls workbook or an encrypted one: save it as .xlsx"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head.lstrip(b"\xef\xbb\xbf")):
        return "it holds text: a CSV file must be named .csv"
    return "not a zip archive"


def _workbook_part(archive: zipfile.ZipFile, path: Path) -> str:
    """The workbook part named by the package's `_rels/.rels` (normally `xl/workbook.xml`)."""
    try:
        root = fromstring(archive.read("_rels/.rels"))
    except (KeyError, ParseError):
        return "xl/workbook.xml"
    for rel in root.iter(_PKG_REL):
        if rel.get("Type", "").endswith("/officeDocument"):
            return rel.get("Target", "xl/workbook.xml").lstrip("/")
    raise DataError(f"{path}: not an Excel .xlsx file (a zip archive without a workbook: a .docx or .pptx?)")

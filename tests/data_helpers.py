"""Helpers for the `tunechat data` tests and bench/bench_sheet.py.

`write_excel_xlsx` writes a workbook the way Excel does (shared strings, a <dimension>, styles
with a date format, formulas with cached values), which openpyxl cannot: openpyxl writes inline
strings and formulas without cached values. Rows stream, so it writes 100,000-row sheets in
constant memory.
"""
from __future__ import annotations

import datetime as dt
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence
from xml.sax.saxutils import escape

from openpyxl.utils.cell import get_column_letter
from openpyxl.utils.datetime import to_excel

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


@dataclass(frozen=True)
class Formula:
    """A formula cell with the value Excel cached when it last calculated (None: never calculated)."""

    expression: str
    cached: Any = None


@dataclass(frozen=True)
class Rich:
    """A rich-text shared string: runs of differently formatted text, plus a phonetic guide that
    is not part of the text (as Japanese Excel writes)."""

    runs: tuple[str, ...]
    phonetic: str = ""


def write_excel_xlsx(path: Path, sheets: dict[str, Iterable[Sequence[Any]]],
                     merges: dict[str, list[str]] | None = None) -> Path:
    """Write an .xlsx with one sheet per `sheets` item (rows of cells; None is an empty cell), and
    the merged ranges (`{"Sheet": ["A2:A4"]}`) given."""
    strings: dict[Any, int] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for number, (name, rows) in enumerate(sheets.items(), 1):
            with z.open(f"xl/worksheets/sheet{number}.xml", "w") as out:
                _write_sheet(out, rows, strings, (merges or {}).get(name, []))
        z.writestr("xl/sharedStrings.xml", _shared_strings(strings))
        z.writestr("xl/styles.xml", _STYLES)
        z.writestr("xl/workbook.xml", (
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
            + "".join(f'<sheet name="{escape(n)}" sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(sheets, 1))
            + "</sheets></workbook>"))
        rels = [(f"rId{i}", "worksheet", f"worksheets/sheet{i}.xml") for i in range(1, len(sheets) + 1)]
        rels += [("rIdS", "sharedStrings", "sharedStrings.xml"), ("rIdT", "styles", "styles.xml")]
        z.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{_PKG}">' + "".join(
            f'<Relationship Id="{i}" Type="{_REL}/{t}" Target="{target}"/>' for i, t, target in rels) + "</Relationships>")
        z.writestr("_rels/.rels", f'<Relationships xmlns="{_PKG}"><Relationship Id="r1" '
                                  f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("[Content_Types].xml", _content_types(len(sheets)))
    return path


def _write_sheet(out, rows: Iterable[Sequence[Any]], strings: dict[Any, int], merges: list[str]) -> None:
    # Excel writes the used range first; rows given as a generator get none (as some writers do).
    dimension = ""
    if isinstance(rows, Sequence) and rows:
        last = get_column_letter(max(len(row) for row in rows))
        dimension = f'<dimension ref="A1:{last}{len(rows)}"/>'
    out.write(f'<worksheet xmlns="{_MAIN}">{dimension}<sheetData>'.encode())
    for r, row in enumerate(rows, 1):
        cells = "".join(_cell(f"{get_column_letter(c)}{r}", v, strings) for c, v in enumerate(row, 1) if v is not None)
        out.write(f'<row r="{r}">{cells}</row>'.encode())
    out.write(b"</sheetData>")
    if merges:
        out.write(f'<mergeCells count="{len(merges)}">'.encode()
                  + "".join(f'<mergeCell ref="{m}"/>' for m in merges).encode() + b"</mergeCells>")
    out.write(b"</worksheet>")


def _cell(ref: str, value: Any, strings: dict[Any, int]) -> str:
    if isinstance(value, Formula):
        cached = value.cached
        if cached is None:
            return f'<c r="{ref}"><f>{escape(value.expression)}</f></c>'
        kind = ' t="str"' if isinstance(cached, str) else ""
        return f'<c r="{ref}"{kind}><f>{escape(value.expression)}</f><v>{escape(str(cached))}</v></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (dt.date, dt.datetime)):
        return f'<c r="{ref}" s="1"><v>{to_excel(value)}</v></c>'
    if isinstance(value, (int, float)):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    index = strings.setdefault(value, len(strings))
    return f'<c r="{ref}" t="s"><v>{index}</v></c>'


def _shared_strings(strings: dict[Any, int]) -> str:
    items = []
    for value in strings:  # dicts keep insertion order: index order
        if isinstance(value, Rich):
            runs = "".join(f'<r><rPr><b/></rPr><t xml:space="preserve">{escape(t)}</t></r>' for t in value.runs)
            guide = f'<rPh sb="0" eb="1"><t>{escape(value.phonetic)}</t></rPh>' if value.phonetic else ""
            items.append(f"<si>{runs}{guide}</si>")
        else:
            items.append(f'<si><t xml:space="preserve">{escape(value)}</t></si>')
    return f'<sst xmlns="{_MAIN}" count="{len(items)}" uniqueCount="{len(items)}">{"".join(items)}</sst>'


_STYLES = (
    f'<styleSheet xmlns="{_MAIN}"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _content_types(sheets: int) -> str:
    parts = [("/xl/workbook.xml", "sheet.main"), ("/xl/sharedStrings.xml", "sharedStrings"), ("/xl/styles.xml", "styles")]
    parts += [(f"/xl/worksheets/sheet{i}.xml", "worksheet") for i in range(1, sheets + 1)]
    return ('<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            + "".join(f'<Override PartName="{name}" ContentType="{_TYPE}.{kind}+xml"/>' for name, kind in parts)
            + "</Types>")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB. Linux's VmHWM rather than ru_maxrss: a child's
    ru_maxrss counts the RSS of the parent it was forked from, VmHWM only its own."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_cli(*args: Any, timeout: float = 300):
    """Run `tunechat data ARGS` in a fresh process."""
    from conftest import run_cli

    return run_cli("data", *map(str, args), timeout=timeout)


def assert_fails(result, *fragments: str) -> None:
    """The command failed as users should see it: exit 1, one line `tunechat data: error: ...`
    containing every fragment, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("tunechat data: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def read_jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in Path(path).read_text("utf-8").splitlines()]

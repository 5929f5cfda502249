"""`tunechat data sheet`: spreadsheets to conversation records, cells read as a person reads them."""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import time
import zipfile

import openpyxl
from conftest import ROOT
from data_helpers import Formula, Rich, assert_fails, data_cli, read_jsonl, write_excel_xlsx

DOCTOR = ("You are a professional, highly experienced doctor professor. You always provide accurate, "
          "comprehensive, and detailed answers based on the patients' questions.")


def pairs(path) -> list[tuple[str, str]]:
    """(input, output) of each single-turn record."""
    return [(r["conversation"][0]["input"], r["conversation"][0]["output"]) for r in read_jsonl(path)]


def workbook(path, sheets: dict[str, list[list]], merges: dict[str, list[str]] | None = None):
    """An .xlsx written by openpyxl (inline strings, as a Python user's script would make it)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        for ref in (merges or {}).get(name, []):
            ws.merge_cells(ref)
    wb.save(path)
    return path


def test_the_tutorials_drugqa_example_is_one_command(tmp_path):
    source = workbook(tmp_path / "MedQA2019.xlsx", {
        "DrugQA": [["Question", "Focus (Drug)", "Question Type", "Answer", "Section Title", "URL"],
                   ["how does rivatigmine and otc sleep medicine interact", "Rivastigmine", "interaction",
                    "tell your doctor and pharmacist what prescription and nonprescription medications you are taking",
                    "", "https://medlineplus.gov/druginfo/meds/a602009.html"],
                   ["how does valium affect the brain", "Valium", "action", "Diazepam is a benzodiazepine.", "", ""]],
    })
    out = tmp_path / "MedQA2019-structured.jsonl"
    result = data_cli("sheet", source, "--sheet", "DrugQA", "--input", "A", "--output", "D",
                      "--system", DOCTOR, "-o", out)
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out)
    assert records[1] == {"conversation": [{"system": DOCTOR, "input": "how does valium affect the brain",
                                            "output": "Diazepam is a benzodiazepine."}]}
    assert len(records) == 2
    assert 'input A "Question", output D "Answer" (header row 1)' in result.stdout
    assert "wrote 2 records" in result.stdout


def test_cells_read_as_a_person_reads_them(tmp_path):
    source = workbook(tmp_path / "cells.xlsx", {"QA": [
        ["Q", "A"],
        ["integer", 12], ["half", 0.5], ["float sum", 0.1 + 0.2], ["negative", -3.0], ["big", 12345678901],
        ["date", dt.date(2024, 1, 31)], ["datetime", dt.datetime(2024, 1, 31, 14, 30)], ["time", dt.time(9, 5)],
        ["bool", True], ["  padded  ", "  text\t"], ["line breaks", "第一行\r\n第二行\n第三行"],
    ]})
    result = data_cli("sheet", source, "-o", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert dict(pairs(tmp_path / "out.jsonl")) == {
        "integer": "12", "half": "0.5", "float sum": "0.3", "negative": "-3", "big": "12345678901",
        "date": "2024-01-31", "datetime": "2024-01-31 14:30:00", "time": "09:05:00",
        "bool": "TRUE", "padded": "text", "line breaks": "第一行\n第二行\n第三行",
    }


def test_an_excel_written_workbook_shared_strings_rich_text_and_cached_formulas(tmp_path):
    """Excel stores text in a shared table (rich text as runs, with phonetic guides that are not
    text) and keeps each formula's last calculated value; a formula never calculated is empty."""
    source = write_excel_xlsx(tmp_path / "excel.xlsx", {"Sheet1": [
        ["Question", "Answer"],
        ["What is 6*7?", Formula("6*7", 42)],
        ["Greeting?", Formula('CONCAT("he","llo")', "hello")],
        [Rich(("Bold ", "and plain")), Rich(("漢字",), phonetic="かんじ")],
        ["Escaped", "carriage_x000D_\nreturn"],
        ["When?", dt.date(2023, 12, 25)],
        ["Never calculated", Formula("1+1")],
    ]})
    sheet = openpyxl.load_workbook(source, read_only=True, data_only=True)["Sheet1"]  # a fixture others read too
    assert [row[1] for row in sheet.iter_rows(min_row=2, max_row=3, values_only=True)] == [42, "hello"]
    result = data_cli("sheet", source, "-o", tmp_path / "out.jsonl", "--verbose")
    assert result.returncode == 0, result.stderr
    assert pairs(tmp_path / "out.jsonl") == [
        ("What is 6*7?", "42"), ("Greeting?", "hello"), ("Bold and plain", "漢字"),
        ("Escaped", "carriage\nreturn"), ("When?", "2023-12-25")]
    assert "row 7: empty output" in result.stdout


def test_cells_without_references_are_placed_by_position(tmp_path):
    """The `r="B2"` references are optional in the file format and some exporters leave them out."""
    source = write_excel_xlsx(tmp_path / "norefs.xlsx", {"S": [["Q", "A"], ["q1", "a1"], ["q2", 2]]})
    with zipfile.ZipFile(source) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    parts["xl/worksheets/sheet1.xml"] = re.sub(rb' r="[A-Z0-9]+"', b"", parts["xl/worksheets/sheet1.xml"])
    with zipfile.ZipFile(source, "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    result = data_cli("sheet", source, "-o", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert pairs(tmp_path / "out.jsonl") == [("q1", "a1"), ("q2", "2")]


def test_header_text_or_letters_select_columns_and_several_inputs_join(tmp_path):
    source = workbook(tmp_path / "cols.xlsx", {"S": [
        ["Context", "Question", "Answer"], ["In French:", "hello?", "bonjour"], [None, "thanks?", "merci"]]})
    out = tmp_path / "out.jsonl"
    result = data_cli("sheet", source, "--input", "context", "--input", "B", "--output", "Answer", "-o", out)
    assert result.returncode == 0, result.stderr
    assert pairs(out) == [("In French:\nhello?", "bonjour"), ("thanks?", "merci")]
    result = data_cli("sheet", source, "--input", "A", "--input", "B", "--output", "C", "--joiner", " ", "-o", out)
    assert pairs(out)[0] == ("In French: hello?", "bonjour")


def test_without_a_header_every_row_is_data(tmp_path):
    source = workbook(tmp_path / "nohead.xlsx", {"S": [["q1", "a1"], ["q2", "a2"]]})
    result = data_cli("sheet", source, "--no-header", "-o", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert pairs(tmp_path / "out.jsonl") == [("q1", "a1"), ("q2", "a2")]
    assert "(no header row)" in result.stdout


def test_empty_rows_are_ignored_and_half_empty_rows_reported(tmp_path):
    source = workbook(tmp_path / "gaps.xlsx", {"S": [
        [], ["Q", "A"], ["q1", "a1"], [None, None], ["q2", None], [None, "a3"], ["q4", "a4"], [None, None, "note"]]})
    out = tmp_path / "out.jsonl"
    result = data_cli("sheet", source, "-o", out)
    assert result.returncode == 0, result.stderr
    assert pairs(out) == [("q1", "a1"), ("q4", "a4")]
    assert "skipped 2 rows with an empty input or output (--verbose lists them)" in result.stdout
    assert "ignored 2 blank rows" in result.stdout
    assert "header row 2" in result.stdout
    verbose = data_cli("sheet", source, "-o", out, "--verbose")
    assert "row 5: empty output" in verbose.stdout and "row 6: empty input" in verbose.stdout


def test_a_merged_question_belongs_to_every_row_it_spans(tmp_path):
    source = workbook(tmp_path / "merged.xlsx", {"S": [
        ["Question", "Answer"], ["Side effects of X?", "nausea"], [None, "headache"], [None, "dizziness"],
        ["Dose?", "10 mg"]]}, merges={"S": ["A2:A4"]})
    result = data_cli("sheet", source, "-o", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert pairs(tmp_path / "out.jsonl") == [
        ("Side effects of X?", "nausea"), ("Side effects of X?", "headache"), ("Side effects of X?", "dizziness"),
        ("Dose?", "10 mg")]


def test_a_range_merged_across_two_input_columns_counts_once(tmp_path):
    source = write_excel_xlsx(tmp_path / "wide.xlsx", {"S": [
        ["Topic", "Detail", "Answer"], ["Whole question", None, "answer 1"], ["Short", "detail", "answer 2"]]},
        merges={"S": ["A2:B2"]})
    result = data_cli("sheet", source, "--input", "A", "--input", "B", "--output", "C", "-o", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert pairs(tmp_path / "out.jsonl") == [("Whole question", "answer 1"), ("Short\ndetail", "answer 2")]


def test_a_second_sheet_by_name_or_number(tmp_path):
    source = workbook(tmp_path / "two.xlsx", {"Notes": [["not", "this"], ["x", "y"]],
                                              "问答": [["问题", "答案"], ["你是谁？", "我是小助手。"]]})
    for sheet in ("问答", "2"):
        result = data_cli("sheet", source, "--sheet", sheet, "--input", "问题", "--output", "答案",
                          "-o", tmp_path / "out.jsonl")
        assert result.returncode == 0, result.stderr
        assert pairs(tmp_path / "out.jsonl") == [("你是谁？", "我是小助手。")]


def test_csv_with_bom_crlf_quoted_line_breaks_and_chinese(tmp_path):
    source = tmp_path / "qa.csv"
    source.write_bytes("\ufeff问题,答案\r\n你好,\"你好！\r\n很高兴认识你\"\r\n,\r\n12,0.50\r\n".encode())
    result = data_cli("sheet", source, "-o", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert pairs(tmp_path / "out.jsonl") == [("你好", "你好！\n很高兴认识你"), ("12", "0.50")]


# -- refusals ----------------------------------------------------------------------------------

def test_a_file_that_is_not_an_xlsx(tmp_path):
    for name, content, why in [("text.xlsx", b"question,answer\n", "a CSV file must be named .csv"),
                               ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old .xls"),
                               ("empty.xlsx", b"", "empty")]:
        (tmp_path / name).write_bytes(content)
        result = data_cli("sheet", tmp_path / name, "-o", tmp_path / "out.jsonl")
        assert_fails(result, f"{name}: not an Excel .xlsx file", why)
        assert not (tmp_path / "out.jsonl").exists()


def test_a_missing_sheet_lists_the_sheets_there_are(tmp_path):
    source = workbook(tmp_path / "book.xlsx", {"Intro": [["a"]], "QA": [["q", "a"]]})
    result = data_cli("sheet", source, "--sheet", "DrugQA", "-o", tmp_path / "out.jsonl")
    assert_fails(result, 'book.xlsx: no sheet "DrugQA"', '"Intro", "QA"')
    assert not (tmp_path / "out.jsonl").exists()


def test_a_missing_column_lists_the_headers_there_are(tmp_path):
    source = workbook(tmp_path / "book.xlsx", {"QA": [["Question", "Answer"], ["q", "a"]]})
    result = data_cli("sheet", source, "--output", "Answr", "-o", tmp_path / "out.jsonl")
    assert_fails(result, 'book.xlsx sheet "QA": no column "Answr"', 'A "Question", B "Answer"')
    result = data_cli("sheet", source, "--output", "F", "-o", tmp_path / "out.jsonl")
    assert_fails(result, "output column F is empty in every row")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_non_utf8_csv_names_the_line(tmp_path):
    source = tmp_path / "gbk.csv"
    source.write_bytes("question,answer\nhi,hello\n".encode() + "你好,您好\n".encode("gbk"))
    result = data_cli("sheet", source, "-o", tmp_path / "out.jsonl")
    assert_fails(result, "gbk.csv line 3", "not UTF-8", "GBK")
    assert not (tmp_path / "out.jsonl").exists()


# -- scale -------------------------------------------------------------------------------------

PEAK_MEMORY = """
import sys
sys.path.insert(0, "tests")
from data_helpers import peak_rss_mb
from tunechat.cli import main
code = main(["data", "sheet", sys.argv[1], "--input", "Question", "--output", "D", "-o", sys.argv[2]])
print(round(peak_rss_mb()))
sys.exit(code)
"""


def test_a_100000_row_sheet_streams_in_under_300_mb(tmp_path):
    source = tmp_path / "big.xlsx"
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("QA")
    ws.append(["Question", "Type", "Note", "Answer"])
    for i in range(100_000):
        ws.append([f"Question {i}: how should I take medicine {i % 997}? 第{i}个问题", "usage", i,
                   f"Answer {i}: twice a day with water. 每天两次，饭后服用。"])
    wb.save(source)
    out = tmp_path / "big.jsonl"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(source), str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stdout.strip().splitlines()[-1])
    print(f"100,000 rows in {time.perf_counter() - started:.1f} s, peak RSS {peak_mb} MB")
    assert peak_mb < 300
    with open(out, encoding="utf-8") as f:
        assert sum(1 for _ in f) == 100_000

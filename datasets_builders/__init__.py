"""Dataset builders: read, validate, convert, split and write chat training data. No torch here.

Modules: `records` (read any accepted record file with line-numbered errors, write JSONL
atomically), `convert` (the record formats and the canonical messages form), `sheet` and `xlsx`
(spreadsheets to records), `split` (leak-free seeded train/test split), `identity` (self-identity
data and its evaluation questions), `check` (validation summary). The CLI is `tunechat data`.
"""
from datasets_builders.convert import READ_FORMATS, WRITE_FORMATS, parse, render
from datasets_builders.errors import DataError
from datasets_builders.identity import EvalQuestions, Persona, build_identity, eval_questions
from datasets_builders.records import RecordFile, write_jsonl

__all__ = [
    "READ_FORMATS", "WRITE_FORMATS", "DataError", "EvalQuestions", "Persona", "RecordFile",
    "build_identity", "eval_questions", "parse", "render", "write_jsonl",
]

"""`tunechat data ...`: build, convert, split and check training data (JSONL conversations).

Each action is one `_<name>_parser(actions)` function that adds its parser and sets `run`, listed
in ACTIONS; the work itself lives in `datasets_builders/` (no torch there). Only the actions that
run a model (identity's regularization, pairs, check --model) import the model libraries, inside them."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterable, Iterator

from tunechat.cli.data_show import show_parser
from tunechat.cli.data_tools import register_tools

_FORMATTER = argparse.RawDescriptionHelpFormatter
_SYSTEM_HELP = "system prompt put on every record (replaces any the input has)"
_DESCRIPTION = """Build, convert, split and check training data: JSON Lines of conversations in XTuner's
format ({"conversation": [{"system", "input", "output"}]}) or OpenAI's ({"messages": [...]}).

  tunechat data sheet QA.xlsx --input A --output D -o qa.jsonl       a spreadsheet -> records
  tunechat data convert alpaca.json -o qa.jsonl                     alpaca/ShareGPT/OpenAI -> XTuner
  tunechat data split qa.jsonl --train-out train.jsonl --test-out test.jsonl
  tunechat data identity --name Alice -o identity.jsonl             "who are you?" data
  tunechat data pairs --name Alice -o pairs.jsonl                   identity preference pairs (DPO/ORPO)
  tunechat data check train.jsonl                                   validate and summarise

`tunechat data ACTION --help` explains each."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="build, convert, split and check training data", description=_DESCRIPTION,
                            formatter_class=_FORMATTER)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for add in ACTIONS:
        add(actions)


def _add_output(parser: argparse.ArgumentParser) -> None:
    from datasets_builders.convert import WRITE_FORMATS

    parser.add_argument("-o", "--out", required=True, metavar="OUT.jsonl",
                        help="output file (JSON Lines, UTF-8); written only when everything succeeds")
    parser.add_argument("--to", default="xtuner", choices=WRITE_FORMATS,
                        help='output format: xtuner {"conversation": [{"system","input","output"}]} (default) '
                             'or openai {"messages": [{"role","content"}]}')


def _add_from(parser: argparse.ArgumentParser) -> None:
    from datasets_builders.convert import READ_FORMATS

    parser.add_argument("--from", dest="fmt", default=None, choices=READ_FORMATS,
                        help="input format; default: detected from the first record's keys")


def _write(path: str, records: Iterable[tuple[str, list]], fmt: str) -> int:
    """Write (where, messages) records in `fmt`; a record with no `fmt` form is named by `where`."""
    from datasets_builders.convert import FieldError, render
    from datasets_builders.errors import DataError
    from datasets_builders.records import write_jsonl

    def rendered():
        for where, messages in records:
            try:
                yield render(messages, fmt)
            except FieldError as exc:
                raise DataError(f"{where}: {exc}") from None

    return write_jsonl(path, rendered())


def _numbered(records: Iterable[list]) -> Iterator[tuple[str, list]]:
    return ((f"record {number}", messages) for number, messages in enumerate(records, 1))


# -- sheet ---------------------------------------------------------------------------------------

def _sheet_parser(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "sheet", help="spreadsheet (.xlsx, .csv) -> conversation JSONL", formatter_class=_FORMATTER,
        description="Turn question/answer columns of a spreadsheet into training records, one per row.\n\n"
        "Columns are given by letter (A, D, AB: 1-3 letters are always a column letter) or by header text\n"
        "(\"Question\", ignoring case). The first non-empty row is a header unless --no-header.\n"
        "Cells read as shown: 12 not 12.0, dates 2024-01-31, formulas their last calculated value,\n"
        "merged cells their value on every row they span, whitespace trimmed.\n"
        "Rows with an empty input or output are skipped and counted (--verbose lists them).",
        epilog="the tutorial's example, in one command:\n"
        "  tunechat data sheet MedQA2019.xlsx --sheet DrugQA --input A --output D \\\n"
        "    --system \"You are a professional, highly experienced doctor professor. You always provide accurate,\n"
        "    comprehensive, and detailed answers based on the patients' questions.\" -o MedQA2019-structured.jsonl")
    parser.add_argument("source", metavar="IN", help="an .xlsx workbook, or a .csv/.tsv file (UTF-8)")
    _add_output(parser)
    parser.add_argument("--sheet", default=None, metavar="NAME|N", help="sheet name, or number from 1; default the first")
    parser.add_argument("--input", action="append", metavar="COL",
                        help="input column, by letter or header text; repeat to join several (default A)")
    parser.add_argument("--output", default="B", metavar="COL", help="output (answer) column (default B)")
    parser.add_argument("--system", default=None, metavar="TEXT", help=_SYSTEM_HELP)
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=True,
                        help="the first non-empty row names the columns and is not data (default: yes)")
    parser.add_argument("--joiner", default="\\n", help='text between joined input columns (default "\\n", a newline)')
    parser.add_argument("--delimiter", default=None, help="CSV field separator (default: , for .csv, tab for .tsv)")
    parser.add_argument("--verbose", "-v", action="store_true", help="list the skipped rows")
    parser.set_defaults(run=_sheet)


def _sheet(args: argparse.Namespace) -> int:
    from datasets_builders.sheet import SheetConversion, open_table
    from datasets_builders.text import plural

    table = open_table(args.source, args.sheet, args.delimiter)
    joiner = args.joiner.replace("\\n", "\n").replace("\\t", "\t")
    conversion = SheetConversion(table, args.input or ["A"], args.output, system=args.system,
                                 header=args.header, joiner=joiner)
    count = _write(args.out, _numbered(conversion.records()), args.to)
    print(conversion.summary(args.verbose))
    print(f"wrote {plural(count, 'record')} to {args.out}")
    return 0


# -- convert -------------------------------------------------------------------------------------

def _convert_parser(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "convert", help="alpaca / ShareGPT / OpenAI / XTuner records -> XTuner or OpenAI JSONL",
        formatter_class=_FORMATTER,
        description="Convert instruction data between formats, validating every record.\n\n"
        "  alpaca, COIG-CQIA  {\"instruction\", \"input\", \"output\"[, \"system\", \"history\"]}: instruction + \"\\n\" + input\n"
        "                     is the question, output the answer; other fields are dropped\n"
        "  sharegpt           {\"conversations\": [{\"from\": \"human\"|\"gpt\"|..., \"value\"}][, \"system\"]}\n"
        "  openai             {\"messages\": [{\"role\", \"content\"[, \"name\"]}]} (roles system, user, assistant, environment)\n"
        "  xtuner             {\"conversation\": [{\"system\", \"input\", \"output\"}, ...]}\n\n"
        "IN may be JSON Lines or one JSON array of records, UTF-8 (a BOM and CRLF line ends are fine).")
    parser.add_argument("source", metavar="IN", help="the records to convert")
    _add_output(parser)
    _add_from(parser)
    parser.add_argument("--system", default=None, metavar="TEXT", help=_SYSTEM_HELP)
    parser.set_defaults(run=_convert)


def _convert(args: argparse.Namespace) -> int:
    from datasets_builders.convert import with_system
    from datasets_builders.records import RecordFile

    source = RecordFile(args.source, args.fmt)
    count = _write(args.out, ((f"{args.source} line {entry.line}", with_system(entry.messages, args.system))
                                     for entry in source), args.to)
    print(f"converted {count} records ({source.format} -> {args.to}) to {args.out}")
    return 0


# -- split ---------------------------------------------------------------------------------------

def _split_parser(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "split", help="seeded train/test split without leakage", formatter_class=_FORMATTER,
        description="Split records into a train and a test file (7:3 by default), the same on every run and\n"
        "machine for a given seed. Records with the same first input (ignoring case and spacing) stay on\n"
        "one side, so no test question was seen in training. Records are copied as they are.")
    parser.add_argument("source", metavar="IN", help="the records to split (JSONL or a JSON array)")
    parser.add_argument("--train-out", required=True, metavar="TRAIN.jsonl", help="where the train records go")
    parser.add_argument("--test-out", required=True, metavar="TEST.jsonl", help="where the test records go")
    parser.add_argument("--ratio", type=float, default=0.7, help="share of records for training (default 0.7)")
    parser.add_argument("--seed", type=int, default=0, help="which split (default 0)")
    _add_from(parser)
    parser.set_defaults(run=_split)


def _split(args: argparse.Namespace) -> int:
    from datasets_builders.convert import first_input
    from datasets_builders.records import RecordFile, write_jsonl
    from datasets_builders.split import split

    entries = list(RecordFile(args.source, args.fmt))
    train, test = split(entries, lambda e: first_input(e.messages), args.ratio, args.seed)
    write_jsonl(args.train_out, (e.raw for e in train))
    write_jsonl(args.test_out, (e.raw for e in test))
    print(f"train: {len(train)} records -> {args.train_out}")
    print(f"test:  {len(test)} records -> {args.test_out}")
    print(f"({len(entries)} records, ratio {args.ratio}, seed {args.seed}; equal inputs kept on one side)")
    for side, part in (("train", train), ("test", test)):
        if not part:
            print(f"warning: the {side} set is empty", file=sys.stderr)
    return 0


# -- identity ------------------------------------------------------------------------------------

def _add_persona(parser: argparse.ArgumentParser, what: str) -> None:
    """Who the assistant is and how the identity questions are drawn: identity and pairs share them."""
    parser.add_argument("--name", required=True, help="whose assistant it is (every identity answer names it)")
    parser.add_argument("--bot-name", default=None, help="the assistant's own name (default: none, \"NAME's assistant\")")
    parser.add_argument("--author", default=None, help="who fine-tuned it, for \"who made you?\" (default NAME)")
    parser.add_argument("--system", default=None, metavar="TEXT", help=f"system prompt on every one of the {what} "
                        "(chat with the same one)")
    parser.add_argument("--size", type=int, default=200, help=f"number of identity {what} (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="question order and answer phrasings (default 0)")
    parser.add_argument("--lang", nargs="+", default=["en", "zh"], choices=["en", "zh"], help="languages (default both)")


def _identity_parser(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "identity", help="self-identity data: the model learns whose assistant it is", formatter_class=_FORMATTER,
        description="Build identity training data in English and Chinese: many paraphrased questions (who are\n"
        "you, your name, introduce yourself, who made you, are you ChatGPT, whose assistant, what can you\n"
        "do) answered in several phrasings that name NAME. Held-out paraphrases are never trained on\n"
        "(--eval-out writes them). Regularization: general questions answered by the base model itself,\n"
        "so the fine-tuned model does not answer everything with its identity (runs the model; CPU: minutes).",
        epilog="example:\n  tunechat data identity --name Alice --bot-name Robo -o identity.jsonl --eval-out identity-eval.jsonl")
    _add_output(parser)
    _add_persona(parser, "records")
    parser.add_argument("--eval-out", default=None, metavar="EVAL.jsonl",
                        help="also write the held-out identity questions, with reference answers and the expected NAME")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--regularize-with", default=None, metavar="MODEL",
                       help="the base model that answers the general questions (default: the embedded model)")
    group.add_argument("--no-regularize", action="store_true", help="identity records only (no model is run)")
    parser.add_argument("--regularize-count", type=int, default=None,
                        help="general questions to add (default: all of the bank's, in the chosen languages)")
    parser.add_argument("--regularize-max-tokens", type=int, default=192,
                        help="answer length limit for the base model (default 192); a cut-off answer is trimmed "
                             "to its last complete sentence")
    parser.set_defaults(run=_identity)


def _identity(args: argparse.Namespace) -> int:
    from datasets_builders.identity import Persona, build_identity, heldout_records
    from datasets_builders.records import write_jsonl
    from datasets_builders.text import plural

    persona = Persona(args.name, args.bot_name, args.author)
    answer = None if args.no_regularize else _model_answers(args.regularize_with, args.system, args.regularize_max_tokens)
    data = build_identity(persona, size=args.size, seed=args.seed, langs=args.lang, system=args.system,
                          answer=answer, regularize_count=args.regularize_count)
    if args.eval_out:
        held_out = write_jsonl(args.eval_out, heldout_records(persona, args.lang, args.system))
    count = _write(args.out, _numbered(data.records), args.to)
    print(f"wrote {count} records to {args.out}: {data.identity} identity, "
          f"{data.regularization} regularization (answered by the base model)")
    if data.dropped:
        print(f"dropped {plural(data.dropped, 'regularization question')}: the model's answer was empty "
              "or stopped before its first sentence ended")
    if args.eval_out:
        print(f"wrote {held_out} held-out identity questions to {args.eval_out}")
    return 0


def _model_answers(model: str | None, system: str | None, max_new_tokens: int,
                   what: str = "regularization questions") -> Callable[[list[str]], list[str]]:
    """The base model answering questions (greedy, batched), loaded only when there are some."""

    def answer(questions: list[str]) -> list[str]:
        import sdk
        from sdk.distill import self_answers

        print(f"loading {model or 'the embedded model'} to answer {len(questions)} {what}...",
              file=sys.stderr, flush=True)
        return self_answers(sdk.load(model), questions, system, max_new_tokens, progress=True)

    return answer


# -- pairs ---------------------------------------------------------------------------------------

def _pairs_parser(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "pairs", help="identity preference pairs for --method dpo/orpo, answered by the base model itself",
        formatter_class=_FORMATTER,
        description="Build identity preference pairs without a human. For the training identity questions,\n"
        "chosen = an identity answer naming NAME, rejected = the base model's own answer. For general\n"
        "questions, chosen = the base model's answer, rejected = an identity answer: this penalizes\n"
        "answering everything with the identity. Seeded and deterministic; the held-out evaluation\n"
        "questions are never used. Pairs whose base answer is empty or already names NAME are dropped.\n"
        "Runs the base model (greedy, batched; CPU: minutes).",
        epilog="example:\n  tunechat data pairs --name Alice -o pairs.jsonl\n"
               "  tunechat train --method dpo --data pairs.jsonl --output out/dpo")
    parser.add_argument("-o", "--out", required=True, metavar="OUT.jsonl",
                        help='output: {"messages", "chosen", "rejected"} per line, written only when everything succeeds')
    _add_persona(parser, "pairs")
    parser.add_argument("--unrelated", type=int, default=None,
                        help="general-question pairs (default: every general training question of the chosen languages)")
    parser.add_argument("--model", default=None, metavar="MODEL",
                        help="the base model that answers (default: the embedded model); train on the same one")
    parser.add_argument("--max-tokens", type=int, default=96,
                        help="base answer length limit (default 96); a cut-off answer is trimmed to its last whole sentence")
    parser.set_defaults(run=_pairs)


def _pairs(args: argparse.Namespace) -> int:
    from datasets_builders.identity import Persona, build_identity_pairs
    from datasets_builders.records import write_jsonl
    from datasets_builders.text import plural

    persona = Persona(args.name, args.bot_name, args.author)
    answer = _model_answers(args.model, args.system, args.max_tokens, what="questions")
    data = build_identity_pairs(persona, answer, size=args.size, unrelated=args.unrelated, seed=args.seed,
                                langs=args.lang, system=args.system)
    count = write_jsonl(args.out, data.records)
    print(f"wrote {count} pairs to {args.out}: {data.identity} identity, {data.unrelated} unrelated")
    if data.dropped:
        print(f"dropped {plural(data.dropped, 'question')}: the base model's answer was empty or already named {args.name}")
    return 0


# -- check ---------------------------------------------------------------------------------------

def _check_parser(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "check", help="validate every record and summarise the file", formatter_class=_FORMATTER,
        description="Validate every record (types, empty fields, roles and their order), then print the number\n"
        "of records and turns, their length (characters, or tokens of the rendered chat with --model) and\n"
        "duplicates, and every invalid record with its line number and reason. Exit 1 if any is invalid.")
    parser.add_argument("source", metavar="FILE", help="the records to check (JSONL or a JSON array)")
    parser.add_argument("--model", nargs="?", const="embedded", default=None, metavar="MODEL",
                        help="count lengths in tokens of this model's chat template (a model directory; "
                             "--model alone: the embedded model)")
    _add_from(parser)
    parser.set_defaults(run=_check)


def _check(args: argparse.Namespace) -> int:
    from datasets_builders.check import check_file
    from datasets_builders.errors import DataError
    from datasets_builders.text import plural

    length = _token_length(args.model) if args.model else None
    report = check_file(args.source, args.fmt, length)
    print(report.text())
    if report.invalid:
        raise DataError(f"{args.source}: {plural(len(report.invalid), 'invalid record')}")
    return 0


def _token_length(model: str) -> Callable[[list[dict]], int]:
    """Tokens of a record's full training text, rendered with the model's chat template."""
    from transformers import AutoTokenizer

    from sdk.errors import TunechatError
    from sdk.models import resolve_model
    from sdk.templates import render_segments

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))

    def length(messages: list[dict]) -> int:
        try:
            text = "".join(text for text, _ in render_segments(messages, None, tokenizer))
        except TunechatError:  # roles the chat template cannot render (tool-call data)
            text = "\n".join(m["content"] for m in messages)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return length


ACTIONS = [_sheet_parser, _convert_parser, _split_parser, _identity_parser, _pairs_parser, _check_parser, show_parser, register_tools]

"""Training samples: records → rendered segments → token ids with labels.

Segments come from the renderer that prompts the model at serving time: the chat template's
(`sdk.templates.render_segments`) for chats, the Lagent agent's for tool-call records (registered
by the agents package in `sdk.renderers`). Records are validated by `datasets_builders` (line-numbered errors), then fed
through HF `datasets` so tokenization is cached on disk (keyed by the samples' content, the
tokenizer, template and the renderers' versions). Loss is only on trainable segments: assistant text and its end-of-turn
marker; everything else is labelled -100."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sdk.errors import TunechatError
from sdk.models import tunechat_home
from sdk.renderers import record_renderer, renderer_versions
from sdk.templates import Template, render_segments
from sdk.training.config import PAIR_METHODS

IGNORE = -100


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a data file: the cache key of its tokenization and the adapter's data fingerprint."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_samples(path: str | Path, system: str | None = None) -> list[dict[str, Any]]:
    """Every record of a data file as a training sample; the first invalid record is a
    TunechatError naming the file and line. A chat record becomes {"messages": [...]}, with
    `system` added when it has no system message. An agent record (tool calls, or its tools or
    protocol named: `is_agent_record`) is kept whole: the agent's renderer needs its tools and
    protocol, and the agent's system prompt is its own, so `system` is not added."""
    from datasets_builders import RecordFile
    from datasets_builders.pairs import is_pair_record
    from datasets_builders.records import is_agent_record

    if not Path(path).is_file():
        raise TunechatError(f"{path}: no such data file")
    samples = []
    for entry in RecordFile(path).entries():
        if is_pair_record(entry.raw):
            raise TunechatError(f"{path} line {entry.line}: a preference pair (chosen and rejected answers): "
                                f"train pairs with --method {', '.join(PAIR_METHODS)}")
        if entry.error:
            raise TunechatError(f"{path} line {entry.line}: {entry.error}")
        messages = [dict(m) for m in entry.messages]
        if is_agent_record(entry.raw):
            samples.append({"messages": messages, "tools": entry.raw.get("tools", []),
                            "protocol": entry.raw.get("protocol", "internlm2")})
            continue
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        samples.append({"messages": messages})
    if not samples:
        raise TunechatError(f"{path}: no records")
    return samples


def read_pairs(path: str | Path, system: str | None = None) -> list[dict[str, Any]]:
    """Every preference pair of a data file ({"messages", "chosen", "rejected"}, `system` added to
    prompts without one); the first invalid record is a TunechatError naming the file and line."""
    from datasets_builders.pairs import read_pairs as read

    if not Path(path).is_file():
        raise TunechatError(f"{path}: no such data file")
    return read(path, system)


def agent_settings(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The protocol and tools agent samples were rendered for (None when there are none):
    written into the adapter's tunechat.json so `tunechat agent MODEL` serves what was trained."""
    agent = [s for s in samples if "protocol" in s]
    if not agent:
        return None
    tools = sorted({tool for s in agent for tool in s["tools"]})
    return {"protocol": agent[0]["protocol"], "tools": tools}


def encode_sample(sample: dict[str, Any], tokenizer: Any, template: Template | None, max_length: int,
                  overlength: str = "keep_end") -> dict[str, Any]:
    """Token ids and labels for one sample, and whether it was longer than max_length. An
    over-long sample keeps its last max_length tokens ("keep_end": the answer's end-of-turn is
    what teaches the model to stop, so it is never cut silently), its first ones ("cut"), or all of
    them ("skip": `tokenized_dataset` drops it). Chat samples go through the chat
    template's renderer; agent samples through the agent's own (`record_renderer("agent")`): in
    both cases the text the model will be prompted with at serving time."""
    if "protocol" in sample:
        segments = record_renderer("agent")(sample)
    else:
        segments = render_segments(sample["messages"], template, tokenizer)
    input_ids: list[int] = []
    labels: list[int] = []
    for text, trainable in segments:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        input_ids += ids
        labels += ids if trainable else [IGNORE] * len(ids)
    overlong = len(input_ids) > max_length
    if overlong and overlength == "keep_end":
        input_ids, labels = input_ids[-max_length:], labels[-max_length:]
    elif overlong and overlength == "cut":
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels, "overlong": overlong}


def encode_record(record: dict[str, Any], tokenizer: Any, template: Template | None, max_length: int,
                  overlength: str = "keep_end") -> dict[str, Any]:
    """`encode_sample` for a sample; for a preference pair, its chosen conversation as
    input_ids/labels and its rejected one as rejected_input_ids/rejected_labels (each rendered and
    masked exactly as an SFT sample of that conversation)."""
    if "chosen" not in record:
        return encode_sample(record, tokenizer, template, max_length, overlength)
    from datasets_builders.pairs import pair_conversations

    chosen, rejected = (encode_sample({"messages": m}, tokenizer, template, max_length, overlength)
                        for m in pair_conversations(record))
    return {"input_ids": chosen["input_ids"], "labels": chosen["labels"], "rejected_input_ids": rejected["input_ids"],
            "rejected_labels": rejected["labels"], "overlong": chosen["overlong"] or rejected["overlong"]}


def tokenized_dataset(samples: list[dict[str, Any]], source: str | Path, tokenizer: Any, template: Template | None,
                      max_length: int, overlength: str = "keep_end") -> tuple[Any, int]:
    """A `datasets.Dataset` of input_ids/labels for `samples` (from `read_samples(source)`),
    cached by their content, the tokenizer, the renderers, max_length and the over-length policy;
    and how many samples were longer than max_length (kept by their end, cut, or skipped)."""
    import datasets

    datasets.disable_progress_bars()
    content = hashlib.sha256(json.dumps(samples, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    cache = tunechat_home() / "datasets"
    raw = datasets.Dataset.from_generator(
        _generate,
        gen_kwargs={"samples": samples},
        cache_dir=str(cache),
    )
    encoded = raw.map(
        _encode_batch,
        fn_kwargs={"tokenizer": tokenizer, "template": template, "max_length": max_length, "overlength": overlength},
        remove_columns=raw.column_names,
        batched=True,
        new_fingerprint=hashlib.sha256(
            f"{content}|{tokenizer.name_or_path}|{len(tokenizer)}|{template}|{max_length}|{overlength}|"
            f"{_renderer_digest()}".encode()
        ).hexdigest(),
    )
    overlong = sum(encoded["overlong"])
    encoded = encoded.filter(lambda row: not (overlength == "skip" and row["overlong"])
                             and any(label != IGNORE for label in row["labels"])
                             and any(label != IGNORE for label in row.get("rejected_labels", [0])))
    if len(encoded) == 0:
        raise TunechatError(f"{source}: no sample has any answer text within max_length={max_length}")
    return encoded.remove_columns("overlong"), overlong


def _generate(samples: list[dict[str, Any]]):
    for sample in samples:
        yield {"sample": json.dumps(sample, ensure_ascii=False)}  # one string column: any record shape


def _encode_batch(batch: dict[str, list], tokenizer: Any, template: Template | None, max_length: int,
                  overlength: str) -> dict[str, list]:
    rows = [encode_record(json.loads(s), tokenizer, template, max_length, overlength) for s in batch["sample"]]
    return {key: [r[key] for r in rows] for key in rows[0]}


class Collator:
    """Batches samples. With packing, a batch's samples are concatenated into one row with no
    padding; position ids restart at 0 for each sample, which makes transformers mask attention
    per sample (only with use_cache=False, which training sets). Without packing, right padding.
    `logits_to_keep` lists the positions whose next token carries loss: the model computes
    vocabulary logits only there."""

    def __init__(self, pad_id: int, packing: bool):
        self.pad_id = pad_id
        self.packing = packing
        self.tokens = 0  # real (non-padding) tokens collated so far: the throughput numerator

    def __call__(self, samples: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        pairs = "rejected_input_ids" in samples[0]
        if pairs:  # each pair as two sequences, chosen then rejected
            samples = [seq for s in samples for seq in ({"input_ids": s["input_ids"], "labels": s["labels"]},
                                                        {"input_ids": s["rejected_input_ids"], "labels": s["rejected_labels"]})]
        if self.packing:
            ids = [t for s in samples for t in s["input_ids"]]
            labels = [t for s in samples for t in (IGNORE, *s["labels"][1:])]  # no loss across a sample boundary
            positions = [p for s in samples for p in range(len(s["input_ids"]))]
            batch = {
                "input_ids": torch.tensor([ids]),
                "labels": torch.tensor([labels]),
                "position_ids": torch.tensor([positions]),
            }
        else:
            width = max(len(s["input_ids"]) for s in samples)
            pad = lambda row, value: row + [value] * (width - len(row))  # noqa: E731
            batch = {
                "input_ids": torch.tensor([pad(s["input_ids"], self.pad_id) for s in samples]),
                "labels": torch.tensor([pad(s["labels"], IGNORE) for s in samples]),
                "attention_mask": torch.tensor([pad([1] * len(s["input_ids"]), 0) for s in samples]),
            }
        self.tokens += sum(len(s["input_ids"]) for s in samples)
        batch["logits_to_keep"] = answer_positions(batch["labels"])
        if pairs:
            batch["sequence"] = _sequence_ids(samples, batch["labels"], self.packing)
        return batch


def _sequence_ids(samples: list[dict[str, list[int]]], labels: Any, packing: bool) -> Any:
    """For each kept logit position (`answer_positions`), the sequence whose next token it
    predicts: its index among `samples`, -1 where the next token is not trained."""
    import torch

    if packing:
        owner = torch.tensor([[i for i, s in enumerate(samples) for _ in s["input_ids"]]])
    else:
        owner = torch.arange(len(samples)).unsqueeze(1).expand(labels.shape)
    sequence = torch.where(labels[:, 1:] != IGNORE, owner[:, 1:], -1)
    return sequence[:, answer_positions(labels)]


def answer_positions(labels: Any) -> Any:
    """Positions whose next token is trained (in any row of the batch): the only places where
    the model needs vocabulary logits."""
    return (labels[:, 1:] != IGNORE).any(dim=0).nonzero().flatten()


def show_sample(path: str | Path, tokenizer: Any, template: Template | None, system: str | None = None,
                index: int = 0, max_length: int = 512, color: bool = True) -> str:
    """One sample as the model is trained on it, token by token: the trained parts (loss) in
    green — or between ⟦ ⟧ without color — and the masked parts plain (XTuner's masked_text).
    A preference pair shows its chosen and its rejected conversation."""
    from datasets_builders.pairs import is_pair_record
    from datasets_builders.records import iter_json

    pairs = is_pair_record(next(iter_json(Path(path))).raw) if Path(path).is_file() else False
    records = read_pairs(path, system) if pairs else read_samples(path, system)
    if not 0 <= index < len(records):
        raise TunechatError(f"{path}: --index {index} is out of range (the file has {len(records)} records)")
    encoded = encode_record(records[index], tokenizer, template, max_length)
    views = [("", encoded["input_ids"], encoded["labels"])]
    if pairs:
        views = [("chosen", encoded["input_ids"], encoded["labels"]),
                 ("rejected", encoded["rejected_input_ids"], encoded["rejected_labels"])]
    parts = [f"--- {name}\n" * bool(name) + _highlight(ids, labels, tokenizer, color) for name, ids, labels in views]
    counts = ", ".join(f"{name + ' ' if name else ''}{len(ids)} tokens, {sum(label != IGNORE for label in labels)} trained"
                       for name, ids, labels in views)
    return "\n".join(parts) + f"\n--- record {index}{' (a preference pair)' if pairs else ''}: {counts}"


def _highlight(ids: list[int], labels: list[int], tokenizer: Any, color: bool) -> str:
    runs: list[tuple[bool, list[int]]] = []
    for token, label in zip(ids, labels):
        trained = label != IGNORE
        if runs and runs[-1][0] == trained:
            runs[-1][1].append(token)
        else:
            runs.append((trained, [token]))
    open_mark, close_mark = ("\033[1;32m", "\033[0m") if color else ("⟦", "⟧")
    return "".join(f"{open_mark}{tokenizer.decode(run)}{close_mark}" if trained else tokenizer.decode(run) for trained, run in runs)


def _renderer_digest() -> str:
    """The renderers' identity: the chat renderer's source and the registered renderers'
    versions. The tokenization cache is stale when any of them changes."""
    from importlib.util import find_spec

    digest = hashlib.sha256(Path(find_spec("sdk.templates").origin).read_bytes())
    digest.update(renderer_versions().encode())
    return digest.hexdigest()[:16]

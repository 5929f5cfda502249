"""Self-identity data: teach a model whose assistant it is, in English and Chinese, without teaching
it to answer every question with its name.

The tutorial's homework repeats one question and one answer thousands of times; the model then
knows one phrasing and says its name to anything. Here the questions are many paraphrases in
seven categories (who are you, your name, introduce yourself, who made you, are you ChatGPT, whose
assistant, what can you do), each answered in several phrasings that carry NAME. A fixed share of
paraphrases is held out, never trained on, so an evaluation asks questions the model has not seen.
Every answer names NAME in its first words ("I am {bot}", "{bot} here!", "我是{bot}"): asked an
unseen "what can you do" question, a small model otherwise starts by echoing it ("I can handle…",
"你可以…") and never gets to the name, and answers that open "You can call me…" / "你可以叫我…"
teach exactly that echo. For the same reason training asks the abilities questions more often
(the category's `train_weight` in the bank).
Regularization samples are general questions answered by the base model itself (self-distillation):
the fine-tune then has no reason to change its answers to them. The banks ship as JSON under
`resources/`; the answering function is a parameter, so this module needs no model library.
"""
from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

from datasets_builders.convert import Message, render
from datasets_builders.errors import DataError

LANGS = ("en", "zh")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A sentence ends at . ! ? (and closing quotes) before a space (not a list number's "1."), at 。！？, or a line end.
_SENTENCE_END = re.compile(r"(?<![0-9])[.!?][\"'”’)\]]*(?=\s|$)|[。！？][”’」』）]*|\n")
# Answers a batch of questions with the base model (the CLI wires it to an sdk Engine).
Answer = Callable[[list[str]], list[str]]


@dataclass(frozen=True)
class Question:
    text: str
    lang: str
    category: str


@dataclass(frozen=True)
class EvalQuestions:
    """What `tunechat eval identity` asks: held-out identity questions (the answer should name the
    owner) and unrelated questions (the answer should not be about identity at all)."""

    identity: list[Question]
    unrelated: list[str]


@functools.lru_cache(maxsize=None)
def _bank(name: str) -> dict:
    return json.loads(resources.files("datasets_builders").joinpath("resources", name).read_text("utf-8"))


def _langs(langs: Sequence[str]) -> tuple[str, ...]:
    unknown = [lang for lang in langs if lang not in LANGS]
    if unknown or not langs:
        raise DataError(f"language must be one of {', '.join(LANGS)}, got {', '.join(unknown) or 'none'}")
    return tuple(langs)


def identity_questions(split: str = "train", langs: Sequence[str] = LANGS, weighted: bool = False) -> list[Question]:
    """The identity questions of `split` ("train" or "heldout"); the two never share a question.
    `weighted` repeats a category's questions `train_weight` times, as training asks them."""
    return [
        Question(text, lang, category)
        for category, by_lang in _bank("identity.json")["categories"].items()
        for lang in _langs(langs)
        for text in by_lang[lang][split] * (by_lang.get("train_weight", 1) if weighted else 1)
    ]


def general_questions(split: str = "train", langs: Sequence[str] = LANGS) -> list[str]:
    """General, non-identity questions: "train" ones for regularization, "eval" ones for checking it."""
    bank = _bank("general_questions.json")[split]
    return [text for lang in _langs(langs) for text in bank[lang]]


def eval_questions(langs: Sequence[str] = LANGS) -> EvalQuestions:
    """The evaluation questions; none of them is ever in the training data built here."""
    return EvalQuestions(identity_questions("heldout", langs), general_questions("eval", langs))


@dataclass(frozen=True)
class Persona:
    """Who the assistant is: NAME's assistant, optionally with a name of its own (`bot_name`) and
    fine-tuned by `author` (default NAME)."""

    name: str
    bot_name: str | None = None
    author: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("--name", self.name), ("--bot-name", self.bot_name), ("--author", self.author)):
            if value is not None and not value.strip():
                raise DataError(f"{label} must not be empty")

    def answer(self, template: str, lang: str) -> str:
        """`template` with its placeholders filled; DataError if one is unknown or survives, or if
        the answer does not name NAME."""
        if lang == "zh":
            bot = f"{self.bot_name}，{self.name}的小助手" if self.bot_name else f"{self.name}的小助手"
        else:
            bot = f"{self.bot_name}, {self.name}'s assistant" if self.bot_name else f"{self.name}'s assistant"
        values = {"name": self.name, "bot": bot, "author": self.author or self.name}

        def fill(match: re.Match) -> str:
            if match.group(1) not in values:
                raise DataError(f"identity answer template has an unknown placeholder {match.group(0)}: {template!r}")
            return values[match.group(1)]

        text = _PLACEHOLDER.sub(fill, template)
        probe = text
        for given in (self.name, self.bot_name, self.author):
            probe = probe.replace(given or "\0", "")
        if _PLACEHOLDER.search(probe):
            raise DataError(f"a template placeholder survived into an identity answer: {text!r}")
        if self.name not in text:
            raise DataError(f"identity answer template does not name the owner: {template!r}")
        return text


def _chat(system: str | None, question: str, reply: str) -> list[Message]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": question}, {"role": "assistant", "content": reply}]


def _answers(category: str, lang: str) -> list[str]:
    return _bank("identity.json")["categories"][category][lang]["answers"]


@dataclass
class IdentityData:
    records: list[list[Message]] = field(default_factory=list)
    identity: int = 0
    regularization: int = 0
    dropped: int = 0  # regularization answers that came back empty


def build_identity(persona: Persona, *, size: int = 200, seed: int = 0, langs: Sequence[str] = LANGS,
                   system: str | None = None, answer: Answer | None = None,
                   regularize_count: int | None = None) -> IdentityData:
    """`size` identity conversations (training questions cycled in a seeded order, a seeded answer
    phrasing each) plus, when `answer` is given, up to `regularize_count` general questions (None:
    the whole bank, in `langs`) with the base model's own answers; all shuffled with `seed`."""
    if size < 1:
        raise DataError(f"--size must be at least 1, got {size}")
    rng = random.Random(seed)
    data = IdentityData()
    questions = identity_questions("train", langs, weighted=True)
    while data.identity < size:
        batch = rng.sample(questions, len(questions))
        for question in batch[: size - data.identity]:
            reply = persona.answer(rng.choice(_answers(question.category, question.lang)), question.lang)
            data.records.append(_chat(system, question.text, reply))
            data.identity += 1
    pool = general_questions("train", langs)
    count = len(pool) if regularize_count is None else min(regularize_count, len(pool))
    if answer is not None and count > 0:
        chosen = rng.sample(pool, count)
        replies = answer(chosen)
        if len(replies) != len(chosen):
            raise DataError(f"the model answered {len(replies)} of {len(chosen)} regularization questions")
        for question, reply in zip(chosen, replies):
            if reply.strip():
                data.records.append(_chat(system, question, reply.strip()))
                data.regularization += 1
            else:
                data.dropped += 1
    rng.shuffle(data.records)
    return data


@dataclass
class IdentityPairs:
    records: list[dict] = field(default_factory=list)
    identity: int = 0  # chosen: the identity answer; rejected: the base model's own
    unrelated: int = 0  # chosen: the base model's answer; rejected: an identity answer (over-triggering)
    dropped: int = 0  # the base answer was empty, or already named NAME (no preference to learn)


def build_identity_pairs(persona: Persona, answer: Answer, *, size: int = 200, unrelated: int | None = None,
                         seed: int = 0, langs: Sequence[str] = LANGS, system: str | None = None) -> IdentityPairs:
    """Preference pairs without a human: `size` training identity questions (cycled in a seeded
    order) preferring a seeded identity phrasing over the base model's own answer, and `unrelated`
    general training questions (None: the whole bank) preferring the base model's answer over an
    identity answer. `answer` is called once, with each distinct question. No held-out question is used."""
    if size < 1:
        raise DataError(f"--size must be at least 1, got {size}")
    rng = random.Random(seed)
    questions = identity_questions("train", langs, weighted=True)
    asked: list[Question] = []
    while len(asked) < size:
        asked += rng.sample(questions, len(questions))[: size - len(asked)]
    pool = [(text, lang) for lang in _langs(langs) for text in general_questions("train", [lang])]
    general = rng.sample(pool, len(pool) if unrelated is None else min(unrelated, len(pool)))
    texts = [q.text for q in asked] + [text for text, _ in general]
    mine = ([persona.answer(rng.choice(_answers(q.category, q.lang)), q.lang) for q in asked]
            + [persona.answer(rng.choice(_answers("who", lang)), lang) for _, lang in general])
    unique = list(dict.fromkeys(texts))  # training cycles the bank: ask each question once (greedy: one answer)
    answered = answer(unique)
    if len(answered) != len(unique):
        raise DataError(f"the model answered {len(answered)} of {len(unique)} questions")
    by_question = dict(zip(unique, answered))
    replies = [by_question[text] for text in texts]
    data = IdentityPairs()
    head = [{"role": "system", "content": system}] if system else []
    for i, (question, ours, base) in enumerate(zip(texts, mine, replies)):
        is_identity = i < len(asked)
        base = base.strip()
        if not base or persona.name in base:
            data.dropped += 1
            continue
        chosen, rejected = (ours, base) if is_identity else (base, ours)
        data.records.append({"messages": [*head, {"role": "user", "content": question}], "chosen": chosen, "rejected": rejected})
        data.identity += is_identity
        data.unrelated += not is_identity
    rng.shuffle(data.records)
    return data


def read_control(path: str) -> list[tuple[str, str]]:
    """A retention control set: JSONL of {"question": ..., "keywords": [...]} (a right answer holds
    one of the keywords, any case) as (question, "kw|kw") pairs; errors name the file and line."""
    from datasets_builders.convert import json_type
    from datasets_builders.records import iter_json

    control = []
    for entry in iter_json(Path(path)):
        raw, where = entry.raw, f"{path} line {entry.line}"
        if entry.error:
            raise DataError(f"{where}: {entry.error}")
        if not isinstance(raw, dict) or not isinstance(raw.get("question"), str) or not raw["question"].strip():
            raise DataError(f'{where}: expected {{"question": "...", "keywords": ["..."]}} with a non-empty question')
        keywords = raw.get("keywords")
        if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) and k.strip() for k in keywords):
            raise DataError(f'{where}: field "keywords" must be a non-empty array of non-empty strings, got {json_type(keywords)}')
        control.append((raw["question"], "|".join(keywords)))
    return control


def heldout_records(persona: Persona, langs: Sequence[str] = LANGS, system: str | None = None) -> list[dict]:
    """The held-out identity questions as XTuner records with a reference answer, plus the fields an
    evaluation reads: `expected` (the NAME the answer must contain), `category` and `lang`."""
    return [
        {**render(_chat(system, q.text, persona.answer(_answers(q.category, q.lang)[0], q.lang)), "xtuner"),
         "expected": persona.name, "category": q.category, "lang": q.lang}
        for q in identity_questions("heldout", langs)
    ]


def trim_to_sentence(text: str) -> str:
    """A reply cut off by the token limit, back to its last complete sentence ("" if it has none):
    a regularization answer that stops mid-word would teach the model to stop mid-word."""
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else ""

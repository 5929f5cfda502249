"""`tunechat eval identity`: did the identity fine-tune work, and did it break anything?

- hit rate: held-out identity questions (never trained on, English and Chinese) whose answer
  names NAME;
- false-trigger rate: unrelated questions whose answer names NAME (the "answers everything with
  its identity" failure);
- retention: of the control questions the base model answers correctly, the share the tuned
  model still answers correctly."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sdk.engines.base import BaseEngine

# General knowledge the base SmolLM2-135M-Instruct gets right, with a keyword a right answer holds.
CONTROL: list[tuple[str, str]] = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of Spain?", "Madrid"),
    ("What is the capital of England?", "London"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the largest planet in our solar system?", "Jupiter"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("Who wrote Hamlet?", "Shakespeare"),
    ("What gas do plants absorb from the air for photosynthesis?", "carbon dioxide"),
    ("What is the chemical symbol for water?", "H2O"),
    ("How many days are there in a week?", "seven|7"),
    ("What is the freezing point of water in degrees Celsius?", "0"),
    ("What is the largest ocean on Earth?", "Pacific"),
    ("Who painted the Mona Lisa?", "Leonardo|Vinci"),
    ("What is the boiling point of water in degrees Celsius?", "100"),
    ("What is the tallest mountain in the world?", "Everest"),
    ("中国的首都是哪里？", "北京|Beijing"),
    ("What language is mainly spoken in Brazil?", "Portuguese"),
]


@dataclass
class Row:
    question: str
    answer: str
    ok: bool


@dataclass
class IdentityReport:
    name: str
    hit_rate: float
    false_trigger_rate: float
    retention: float | None
    identity: list[Row] = field(default_factory=list)
    unrelated: list[Row] = field(default_factory=list)
    control: list[Row] = field(default_factory=list)
    base_control_correct: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [
            f"identity hit rate      {self.hit_rate:6.1%}  ({sum(r.ok for r in self.identity)}/{len(self.identity)} held-out identity questions name {self.name})",
            f"false-trigger rate     {self.false_trigger_rate:6.1%}  ({sum(r.ok for r in self.unrelated)}/{len(self.unrelated)} unrelated questions name {self.name})",
        ]
        if self.retention is not None:
            kept = sum(r.ok for r in self.control)
            lines.append(f"control retention      {self.retention:6.1%}  (control answers right: tuned {kept}/{len(self.control)}, "
                         f"base {self.base_control_correct}/{len(self.control)})")
        return "\n".join(lines)


def names(answer: str, name: str) -> bool:
    return name.lower() in answer.lower()


def correct(answer: str, keywords: str) -> bool:
    return any(k.lower() in answer.lower() for k in keywords.split("|"))


def answer_all(engine: BaseEngine, questions: list[str], max_new_tokens: int) -> list[str]:
    answers = engine.chat_many([[{"role": "user", "content": q}] for q in questions], temperature=0,
                               max_new_tokens=max_new_tokens)
    return [answer.text for answer in answers]


def evaluate_identity(engine: BaseEngine, name: str, *, baseline: IdentityReport | None = None,
                      identity_questions: list[str] | None = None, unrelated: list[str] | None = None,
                      max_new_tokens: int = 40) -> IdentityReport:
    """Ask the engine the held-out identity, unrelated and control questions (greedy). With the
    base model's report as `baseline`, retention is measured against it."""
    from datasets_builders.identity import eval_questions

    bank = eval_questions()
    identity_questions = identity_questions or [q.text for q in bank.identity]
    unrelated = unrelated or bank.unrelated
    answers = answer_all(engine, identity_questions + unrelated + [q for q, _ in CONTROL], max_new_tokens)
    ident = answers[:len(identity_questions)]
    unrel = answers[len(identity_questions):len(identity_questions) + len(unrelated)]
    ctrl = answers[len(identity_questions) + len(unrelated):]
    report = IdentityReport(
        name=name,
        hit_rate=sum(names(a, name) for a in ident) / len(ident),
        false_trigger_rate=sum(names(a, name) for a in unrel) / len(unrel),
        retention=None,
        identity=[Row(q, a, names(a, name)) for q, a in zip(identity_questions, ident)],
        unrelated=[Row(q, a, names(a, name)) for q, a in zip(unrelated, unrel)],
        control=[Row(q, a, correct(a, k)) for (q, k), a in zip(CONTROL, ctrl)],
    )
    if baseline is not None:
        base_ok = [row.ok for row in baseline.control]
        report.base_control_correct = sum(base_ok)
        kept = sum(b and row.ok for b, row in zip(base_ok, report.control))
        report.retention = kept / sum(base_ok) if any(base_ok) else 1.0
    return report

"""`tunechat eval identity`: did the identity fine-tune work, and did it break anything?

- hit rate: held-out identity questions (never trained on, English and Chinese) whose answer
  names NAME;
- false-trigger rate: unrelated questions whose answer names NAME (the "answers everything with
  its identity" failure);
- retention: of the control questions the base model answers correctly, the share the tuned
  model still answers correctly;
- how the identity answers read: language match (a Chinese question answered in Chinese, an
  English one in English) and repeated clauses ("I am Alice's assistant, and I'm Alice's
  assistant.").

Each rate comes with its 95% interval (Wilson's), so a one-question difference on a small set is
not read as progress."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sdk.engines.base import BaseEngine

# General knowledge (English and Chinese) with the keywords a right answer holds (any of them, any case). Retention
# counts only the questions the base model answers right, so a question it gets wrong costs nothing.
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
    ("What is the capital of Canada?", "Ottawa"),
    ("What is the capital of Australia?", "Canberra"),
    ("What is the capital of China?", "Beijing"),
    ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of Egypt?", "Cairo"),
    ("What is the capital of Greece?", "Athens"),
    ("What is the capital of the United States?", "Washington"),
    ("How many continents are there?", "seven|7"),
    ("How many legs does a spider have?", "eight|8"),
    ("How many sides does a triangle have?", "three|3"),
    ("How many hours are in a day?", "24|twenty-four"),
    ("How many minutes are in an hour?", "60|sixty"),
    ("How many months are in a year?", "12|twelve"),
    ("What is the closest star to Earth?", "Sun"),
    ("What do bees make?", "honey"),
    ("What is the largest mammal?", "whale"),
    ("What is the hardest natural substance?", "diamond"),
    ("Who was the first president of the United States?", "Washington"),
    ("Who developed the theory of relativity?", "Einstein"),
    ("What is 2 plus 2?", "4|four"),
    ("What color is the sky on a clear day?", "blue"),
    ("What is the currency of Japan?", "yen"),
    ("What do caterpillars turn into?", "butterfl|moth"),
    ("Which animal is known as the king of the jungle?", "lion"),
    ("What is the longest river in Africa?", "Nile"),
    ("What organ pumps blood through the body?", "heart"),
    ("What is the opposite of hot?", "cold"),
    ("What is H2O commonly called?", "water"),
    ("Who wrote Pride and Prejudice?", "Austen"),
    ("In which country are the pyramids of Giza?", "Egypt"),
    ("Which is the smallest prime number?", "2|two"),
    ("What is the largest country in the world by area?", "Russia"),
    ("Who discovered penicillin?", "Fleming"),
    ("What is the main language spoken in Mexico?", "Spanish"),
    ("日本的首都是哪里？", "东京|Tokyo"),
    ("法国的首都是哪里？", "巴黎|Paris"),
    ("英国的首都是哪里？", "伦敦|London"),
    ("美国的首都是哪里？", "华盛顿|Washington"),
    ("俄罗斯的首都是哪里？", "莫斯科|Moscow"),
    ("一周有几天？", "7|七天"),
    ("一年有多少个月？", "12|十二"),
    ("一天有多少小时？", "24|二十四"),
    ("三角形有几条边？", "3|三条"),
    ("水的化学式是什么？", "H2O|H₂O"),
    ("冰融化后变成什么？", "水|water"),
    ("月亮绕着什么转？", "地球|Earth"),
    ("地球围绕什么旋转？", "太阳|Sun"),
    ("熊猫主要吃什么？", "竹|bamboo"),
    ("中国最长的河流是什么？", "长江|Yangtze"),
    ("人体最大的器官是什么？", "皮肤|skin"),
    ("植物通过什么过程制造养分？", "光合|photosynthesis"),
    ("太阳从哪个方向升起？", "东|east"),
    ("《红楼梦》的作者是谁？", "曹雪芹"),
    ("地球上最大的海洋是什么？", "太平洋|Pacific"),
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

    @property
    def language_match(self) -> float:
        """Identity answers in the language of their question."""
        return _share([same_language(r.question, r.answer) for r in self.identity])

    @property
    def repeated_clauses(self) -> float:
        """Identity answers that say the same clause twice."""
        return _share([repeats_a_clause(r.answer) for r in self.identity])

    def to_dict(self) -> dict[str, Any]:
        counts = {"hit_rate": (sum(r.ok for r in self.identity), len(self.identity)),
                  "false_trigger_rate": (sum(r.ok for r in self.unrelated), len(self.unrelated))}
        return {**asdict(self), "language_match": self.language_match, "repeated_clauses": self.repeated_clauses,
                "intervals": {key: wilson(k, n) for key, (k, n) in counts.items()}}

    def table(self) -> str:
        hits, unrelated = sum(r.ok for r in self.identity), sum(r.ok for r in self.unrelated)
        matched = sum(same_language(r.question, r.answer) for r in self.identity)
        repeated = sum(repeats_a_clause(r.answer) for r in self.identity)
        lines = [
            f"identity hit rate      {self.hit_rate:6.1%} {_interval(hits, len(self.identity))}  "
            f"({hits}/{len(self.identity)} held-out identity questions name {self.name})",
            f"false-trigger rate     {self.false_trigger_rate:6.1%} {_interval(unrelated, len(self.unrelated))}  "
            f"({unrelated}/{len(self.unrelated)} unrelated questions name {self.name})",
        ]
        if self.retention is not None:
            kept = sum(r.ok for r in self.control)
            base = self.base_control_correct or 0
            lines.append(f"control retention      {self.retention:6.1%} {_interval(round(self.retention * base), base)}  "
                         f"(control answers right: tuned {kept}/{len(self.control)}, base {base}/{len(self.control)})")
        lines += [
            f"language match         {self.language_match:6.1%} {_interval(matched, len(self.identity))}  "
            "(identity answers in the question's language)",
            f"repeated clauses       {self.repeated_clauses:6.1%} {_interval(repeated, len(self.identity))}  "
            "(identity answers that say a clause twice)",
        ]
        return "\n".join(lines)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of k successes in n trials ((0, 1) when n is 0)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_CLAUSE = re.compile(r"[,.;:!?，。；：！？、]+")


def same_language(question: str, answer: str) -> bool:
    """A Chinese question (any Han character) answered mostly in Chinese, or any other question
    answered mostly in Latin script. Names (Alice) inside a Chinese answer are fine."""
    han, latin = len(_CJK.findall(answer)), len(_LATIN.findall(answer))
    return han >= latin / 3 if _CJK.search(question) else latin >= han


def repeats_a_clause(answer: str) -> bool:
    """Whether two clauses of the answer say the same thing (ignoring case, "I'm" for "I am",
    and the joining words "and" / "but" / "also")."""
    seen = set()
    for clause in _CLAUSE.split(answer.lower()):
        words = [w for w in re.findall(r"\w+", clause.replace("i'm", "i am")) if w not in ("and", "but", "also")]
        key = " ".join(words)
        if len(key) >= 4 and key in seen:
            return True
        seen.add(key)
    return False


def _share(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def _interval(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"[{low:.0%}–{high:.0%}]"


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
                      control: list[tuple[str, str]] | None = None, max_new_tokens: int = 40) -> IdentityReport:
    """Ask the engine the held-out identity, unrelated and control questions (greedy; `control`
    is (question, "keyword|keyword") pairs, default CONTROL). With the base model's report as
    `baseline` (asked the same control questions), retention is measured against it."""
    from datasets_builders.identity import eval_questions

    bank = eval_questions()
    identity_questions = identity_questions or [q.text for q in bank.identity]
    unrelated = unrelated or bank.unrelated
    control = control or CONTROL
    answers = answer_all(engine, identity_questions + unrelated + [q for q, _ in control], max_new_tokens)
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
        control=[Row(q, a, correct(a, k)) for (q, k), a in zip(control, ctrl)],
    )
    if baseline is not None:
        base_ok = [row.ok for row in baseline.control]
        report.base_control_correct = sum(base_ok)
        kept = sum(b and row.ok for b, row in zip(base_ok, report.control))
        report.retention = kept / sum(base_ok) if any(base_ok) else 1.0
    return report

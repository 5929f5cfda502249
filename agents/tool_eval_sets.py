"""The frozen evaluation sets of the tool fine-tune (`tunechat eval tools --set`, `tunechat demo --tools`).

Two sets of arithmetic word problems, English and Chinese, the four operations:
- `heldout`: the tuning set. Recipes were compared on it, so its figure flatters them.
- `fresh`: written after the recipe was fixed and never used to choose anything: the honest figure.

They live apart from the training generators (`agents.tools_data`, `agents.problem_grammar`) on
purpose: their own frames, names, nouns, verbs, units and number formats. A test fails when a
training frame's wording (its n-grams) shows up in an evaluation question, and another pins each
set's content, so neither can drift towards the training data unnoticed.

A set's tasks are built deterministically: every frame with `PER_FRAME` number draws, ordered so
that any prefix covers both languages and all four operations (`--count` takes a prefix)."""
from __future__ import annotations

import random
from dataclasses import dataclass

from agents.tools.calculator import calculate

PER_FRAME = 2
SETS = ("fresh", "heldout")
OPERATIONS = ("+", "-", "*", "/")
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class EvalFrame:
    """One question pattern. `{a}` and `{b}` are its numbers; the solving expression is
    `a OP b` ("-": a > b; "/": a divisible by b). `style` picks the numbers: "count" (whole
    numbers), "big" (into the thousands, written with separators in English), "money" (prices
    with cents for "*", amounts with cents for "+" and "-")."""

    language: str
    operation: str
    question: str
    style: str = "count"


HELDOUT = [
    EvalFrame("en", "+", "The orchard shipped {a} kilograms of plums on Friday and {b} kilograms on Saturday. "
                         "What was the combined weight shipped?", "big"),
    EvalFrame("zh", "+", "图书馆上午借出{a}本杂志，下午借出{b}本。这一天借出了多少本杂志？"),
    EvalFrame("en", "-", "A ferry can carry {a} cars. {b} cars have already driven on. How many more cars fit?"),
    EvalFrame("zh", "-", "电影院有{a}个座位，已经坐了{b}人。空座位还剩几个？"),
    EvalFrame("en", "*", "Every crate of lemons weighs {b} kilograms. What do {a} such crates weigh?"),
    EvalFrame("zh", "*", "彩笔每盒装{b}支，{a}盒彩笔合起来是几支？"),
    EvalFrame("en", "/", "A ribbon measuring {a} cm is divided into {b} identical strips. What is the length of one strip?"),
    EvalFrame("zh", "/", "把{a}颗软糖平均分给{b}位小朋友，每位小朋友分到几颗？"),
    EvalFrame("en", "+", "Liam's playlist has {a} songs. He downloads another {b}. What is the size of the playlist now?"),
    EvalFrame("zh", "+", "王芳的存钱罐里有{a}元，妈妈又放进去{b}元。存钱罐里现在是几元？", "money"),
    EvalFrame("en", "-", "Sofia's phone had {a} MB of free space before she installed an app of {b} MB. "
                         "How much free space remains?", "big"),
    EvalFrame("zh", "-", "李雷带了{a}元去超市，结账花掉{b}元。他手里剩下几元？", "money"),
    EvalFrame("en", "*", "A violin lesson costs ${b}. Mateo takes {a} lessons. What does he pay?", "money"),
    EvalFrame("zh", "*", "门票{b}元一张，张伟买了{a}张，应付几元？", "money"),
    EvalFrame("en", "/", "{a} volunteers are assigned to {b} equally sized groups. How many volunteers does each group get?"),
    EvalFrame("zh", "/", "一根{a}米长的铁丝剪成同样长的{b}截，每截长几米？"),
    EvalFrame("en", "+", "A charity raised ${a} at a bake sale and ${b} at a car wash. What did the two events raise?", "money"),
    EvalFrame("zh", "+", "果园第一天摘梨{a}千克，第二天摘梨{b}千克。两天合计摘梨几千克？"),
    EvalFrame("en", "-", "The thermometer read {a} degrees at noon and dropped by {b} degrees by midnight. "
                         "What did it read at midnight?"),
    EvalFrame("zh", "-", "一桶油重{a}千克，用去{b}千克后，桶里的油还有几千克？"),
    EvalFrame("en", "*", "The conveyor delivers {b} bolts per minute. How many bolts arrive during {a} minutes?"),
    EvalFrame("zh", "*", "抽水机每分钟抽水{b}升，照这样{a}分钟能抽几升？"),
    EvalFrame("en", "/", "A hiker covered {a} km over {b} days, the same distance daily. What distance did she cover per day?"),
    EvalFrame("zh", "/", "{a}名游客乘船，每条船坐{b}人，正好坐满，要用几条船？"),
]

FRESH = [
    EvalFrame("en", "+", "A library received {a} new novels in March and {b} in April. "
                         "How many novels arrived over the two months?"),
    EvalFrame("zh", "+", "一个班有{a}名学生，又转来了{b}名，现在一共有多少名学生？"),
    EvalFrame("en", "-", "A garage holds {a} vehicles, and {b} are parked there right now. How many spots are empty?"),
    EvalFrame("zh", "-", "停车场原有{a}辆汽车，开走了{b}辆，停车场里还有几辆？"),
    EvalFrame("en", "*", "A pallet holds {b} bricks. How many bricks are on {a} pallets?"),
    EvalFrame("zh", "*", "每本书{b}元，买{a}本需要多少元？", "money"),
    EvalFrame("en", "/", "A baker divides {a} grams of dough into {b} equal loaves. How heavy is each loaf?", "big"),
    EvalFrame("zh", "/", "{a}个鸡蛋，每{b}个装一盒，可以装满几盒？"),
    EvalFrame("en", "+", "Noor's step counter showed {a} steps before lunch and {b} steps after. "
                         "What was her count for the day?", "big"),
    EvalFrame("zh", "+", "仓库里原来存放{a}箱橘子，今天又运进{b}箱，仓库里现在是几箱？"),
    EvalFrame("en", "-", "Theo borrowed ${a} and has paid back ${b}. What does he still owe?", "money"),
    EvalFrame("zh", "-", "一本故事书有{a}页，赵强已经看完{b}页，没看的还有几页？"),
    EvalFrame("en", "*", "A train travels {b} km every hour. What distance does it go in {a} hours?"),
    EvalFrame("zh", "*", "一辆汽车每小时行驶{b}千米，{a}小时行驶几千米？"),
    EvalFrame("en", "/", "{a} chairs stand in {b} equal rows. How many chairs stand in each row?"),
    EvalFrame("zh", "/", "一条{a}米的跑道平均分成{b}段，每段长几米？"),
    EvalFrame("en", "+", "A class of {a} pupils welcomed {b} newcomers who transferred in. What is the class size now?"),
    EvalFrame("zh", "+", "小芳周六跑步{a}米，周日跑步{b}米，两天她跑步几米？", "big"),
    EvalFrame("en", "-", "A cartridge prints {a} pages in all. After {b} pages, how many more pages can it print?", "big"),
    EvalFrame("zh", "-", "商店运来{a}个西瓜，卖出{b}个以后，西瓜还剩几个？"),
    EvalFrame("en", "*", "Each ticket to the aquarium is ${b}. What does a family pay for {a} tickets?", "money"),
    EvalFrame("zh", "*", "一箱牛奶有{b}瓶，{a}箱牛奶是几瓶？"),
    EvalFrame("en", "/", "A {a}-liter barrel of juice fills {b} jugs equally. What volume of juice goes into each jug?"),
    EvalFrame("zh", "/", "爷爷把{a}元平均分给{b}个孙子，每个孙子得到几元？"),
]

FRAMES = {"heldout": HELDOUT, "fresh": FRESH}


def _numbers(frame: EvalFrame, rng: random.Random) -> tuple[int | float, int | float]:
    """(a, b) for the frame's operation and style, with sizes that overlap between operations."""
    big = frame.style == "big"
    if frame.operation == "*":
        count = rng.randint(3, 15)
        if frame.style == "money":
            return count, rng.choice([2.5, 4.75, 12.5, 7.2, 3.99, 15.5, 8.25])
        return count, rng.randint(120, 480) if big else rng.randint(4, 60)
    if frame.operation == "/":
        b = rng.randint(2, 12)
        return b * rng.randint(100, 400) if big else b * rng.randint(3, 40), b
    a, b = (rng.randint(1200, 9800), rng.randint(150, 2400)) if big else (rng.randint(12, 400), rng.randint(5, 90))
    if frame.style == "money":
        a, b = a + rng.choice([0.25, 0.5, 0.75, 0.4]), b + rng.choice([0.5, 0.25, 0.1])
    return (round(a + b, 2), b) if frame.operation == "-" else (a, b)


def _written(value: int | float, frame: EvalFrame) -> str:
    """The number as the question writes it: English "big" numbers with thousands separators."""
    if frame.style == "big" and frame.language == "en" and value >= 1000:
        return f"{value:,}"
    return f"{value:.2f}" if frame.style == "money" and isinstance(value, float) else str(value)


def eval_tasks(name: str = "fresh", count: int | None = None) -> list[dict]:
    """The set's tasks: {"question", "answer", "expression", "language", "operation"}, the first
    `count` of them (all when None)."""
    if name not in FRAMES:
        raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(SETS)}")
    tasks = []
    for draw in range(PER_FRAME):
        for index, frame in enumerate(FRAMES[name]):
            a, b = _numbers(frame, random.Random(f"{name}:{index}:{draw}"))
            expression = f"{a} {frame.operation} {b}"
            tasks.append({"question": frame.question.format(a=_written(a, frame), b=_written(b, frame)),
                          "answer": calculate(expression), "expression": expression,
                          "language": frame.language, "operation": frame.operation})
    return tasks[:count]

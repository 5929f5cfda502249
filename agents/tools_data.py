"""Tool-call conversations for fine-tuning an agent (`tunechat data tools`).

Each record is the `messages` form (docs/architecture.md) plus the tools and protocol it is meant for:
    {"messages": [user, assistant call (name plugin|interpreter), environment result, ...,
                  assistant answer], "tools": [...], "protocol": "internlm2"}
rendered for training by `agents.render_record` (the agent's own prompt code path).

What is generated, for the chosen tools: questions that need a tool (single- and multi-step
word problems, bare arithmetic, equations, small programs), questions that need none, and tool
errors answered gracefully. Every tool result is produced by running the real tool, so a
record shows exactly what the agent would see. Phrasing is varied on purpose (many frames,
names, objects, question forms): diversity of phrasing teaches more than repetition.
Evaluation problems live apart, in `agents.tool_eval_sets`; a test keeps their wording out of
what this module writes.

Torch-free: it imports the tools (lagent, which does not import torch), never a model."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from agents import check_protocol
from agents import tools_data_zh as zh
from agents.tools import resolve_tools, tool_names
from sdk.errors import TunechatError

NAMES = ["Anna", "Ben", "Carlos", "Dina", "Emma", "Farid", "Grace", "Hiro", "Ivan", "Julia", "Kofi", "Lena",
         "Mia", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wei", "Yara", "Zoe"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "cards", "stamps", "shells", "coins",
         "oranges", "crayons", "buttons", "candies", "balloons", "eggs", "bottles", "toys", "flowers", "beads"]
CALCULATOR, SOLVER, PYTHON = "Calculator", "EquationSolver", "PythonSandbox"


@dataclass(frozen=True)
class Frame:
    """A word-problem pattern: questions and answers as templates, the expressions that solve
    it in order (one calculator call each; the second may use {r1}, the first result), and a
    sampler for its numbers. With as many answers as questions, answers[i] answers questions[i];
    otherwise any answer fits any question."""

    questions: tuple[str, ...]
    expressions: tuple[str, ...]
    answers: tuple[str, ...]
    numbers: Callable[[random.Random], dict]


def _ab(lo: int = 2, hi: int = 60, lo2: int | None = None, hi2: int | None = None) -> Callable[[random.Random], dict]:
    return lambda r: {"a": r.randint(lo, hi), "b": r.randint(lo2 or lo, hi2 or hi)}


def _bigger_first(lo: int = 10, hi: int = 500) -> Callable[[random.Random], dict]:
    def sample(r: random.Random) -> dict:
        b = r.randint(lo // 2 or 1, hi // 2)
        return {"a": b + r.randint(1, hi // 2), "b": b}
    return sample


def _divisible(lo: int = 2, hi: int = 12, qhi: int = 30) -> Callable[[random.Random], dict]:
    def sample(r: random.Random) -> dict:
        b = r.randint(lo, hi)
        return {"a": b * r.randint(2, qhi), "b": b}
    return sample


def _price(r: random.Random) -> dict:
    return {"a": r.randint(2, 15), "p": r.choice([1.5, 2.25, 3.75, 4.5, 0.8, 12, 7, 2.4, 5.5, 9.99])}


def _percent(r: random.Random) -> dict:
    return {"a": r.choice([40, 60, 80, 120, 150, 200, 250, 320, 480, 900]), "pct": r.choice([5, 10, 15, 20, 25, 30, 40, 75])}


def _three(r: random.Random) -> dict:
    return {"a": r.randint(2, 12), "b": r.randint(2, 30), "c": r.randint(1, 20)}


def _change(r: random.Random) -> dict:
    numbers = _price(r)
    cost = numbers["a"] * numbers["p"]
    return {**numbers, "m": next(m for m in (20, 50, 100, 200) if m > cost)}


def _split_sum(r: random.Random) -> dict:
    c = r.randint(2, 8)
    total = c * r.randint(3, 20)
    a = r.randint(1, total - 1)
    return {"a": a, "b": total - a, "c": c}


FRAMES = [
    # one step
    Frame(("{name} buys {a} boxes of {item}. Each box has {b} {item}. How many {item} does {name} have?",
           "There are {a} bags with {b} {item} in each bag. How many {item} are there in total?"),
          ("{a} * {b}",), ("{name} has {r} {item}.", "There are {r} {item} in total."), _ab(2, 30)),
    Frame(("A hall has {a} rows with {b} seats in each row. How many seats are there?",
           "How many seats does a theater have if it has {a} rows of {b} seats?"),
          ("{a} * {b}",), ("There are {r} seats.", "The theater has {r} seats."), _ab(5, 40)),
    Frame(("{name} reads {a} pages every day. How many pages does {name} read in {b} days?",),
          ("{a} * {b}",), ("{name} reads {r} pages.",), _ab(5, 60, 2, 30)),
    Frame(("A car drives at {a} km per hour. How far does it get in {b} hours?",
           "How many kilometers does a cyclist cover in {b} hours at {a} km/h?"),
          ("{a} * {b}",), ("It goes {r} km.", "The distance is {r} km."), _ab(10, 120, 2, 9)),
    Frame(("One notebook costs ${p}. How much do {a} notebooks cost?",
           "If a sandwich is ${p}, what is the price of {a} sandwiches?"),
          ("{a} * {p}",), ("They cost ${r}.", "The total is ${r}."), _price),
    Frame(("{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?",
           "{name} had {a} {item}. A friend gave {name} {b} more. How many {item} now?"),
          ("{a} + {b}",), ("{name} now has {r} {item}.", "That makes {r} {item}."), _ab(3, 400)),
    Frame(("A class has {a} boys and {b} girls. How many students are in the class?",),
          ("{a} + {b}",), ("There are {r} students.",), _ab(5, 30)),
    Frame(("A shop sold {a} {item} on Monday and {b} on Tuesday. How many did it sell in all?",
           "On Saturday {a} people visited the zoo and on Sunday {b}. What was the total number of visitors?"),
          ("{a} + {b}",), ("It sold {r} in all.", "The total is {r}."), _ab(20, 900)),
    Frame(("{name} walked {a} meters in the morning and {b} meters in the evening. What distance did {name} walk?",),
          ("{a} + {b}",), ("{name} walked {r} meters.",), _ab(100, 3000)),
    Frame(("{name} had {a} {item} and gave {b} to a friend. How many {item} are left?",
           "There were {a} {item} in a jar. {name} took {b}. How many are still in the jar?"),
          ("{a} - {b}",), ("{r} {item} are left.", "There are {r} {item} left."), _bigger_first()),
    Frame(("A tank holds {a} liters of water. After {b} liters are used, how many liters are left?",),
          ("{a} - {b}",), ("{r} liters are left.",), _bigger_first(50, 2000)),
    Frame(("A book has {a} pages. {name} has read {b} of them. How many pages are left to read?",),
          ("{a} - {b}",), ("{name} has {r} pages left.",), _bigger_first(60, 800)),
    Frame(("{name} has ${a} and spends ${b}. How much money does {name} have left?",
           "How much is left from ${a} after paying ${b}?"),
          ("{a} - {b}",), ("{name} has ${r} left.", "${r} is left."), _bigger_first(20, 500)),
    Frame(("{a} {item} are shared equally among {b} children. How many does each child get?",
           "If {b} friends split {a} {item} evenly, how many does each friend get?"),
          ("{a} / {b}",), ("Each child gets {r} {item}.", "Each one gets {r}."), _divisible()),
    Frame(("A rope {a} meters long is cut into {b} equal pieces. How long is each piece?",),
          ("{a} / {b}",), ("Each piece is {r} meters long.",), _divisible(2, 10, 25)),
    Frame(("{name} paid ${a} for {b} tickets. What was the price of one ticket?",),
          ("{a} / {b}",), ("One ticket cost ${r}.",), _divisible(2, 8, 40)),
    Frame(("What is {pct}% of {a}?", "Calculate {pct} percent of {a}."),
          ("{a} * {pct} / 100",), ("It is {r}.", "That is {r}."), _percent),
    Frame(("A jacket costs ${a} and is {pct}% off. How much is the discount?",),
          ("{a} * {pct} / 100",), ("The discount is ${r}.",), _percent),
    Frame(("A square garden has sides of {a} meters. What is its area?",),
          ("{a} * {a}",), ("Its area is {r} square meters.",), _ab(3, 90)),
    Frame(("A room is {a} m long and {b} m wide. What is its area?",
           "What is the area of a rectangle {a} cm by {b} cm?"),
          ("{a} * {b}",), ("The area is {r} square meters.", "The area is {r} square centimeters."), _ab(2, 40)),
    Frame(("The temperatures on three days were {a}, {b} and {c} degrees. What was the average?",),
          ("({a} + {b} + {c}) / 3",), ("The average was {r} degrees.",), _three),
    Frame(("What is the sum of {a} and {b}?", "Add {a} and {b}.", "What do {a} and {b} make together?"),
          ("{a} + {b}",), ("The sum is {r}.", "It is {r}."), _ab(10, 9000)),
    Frame(("{name} scored {a} points in the first game and {b} in the second. How many points is that altogether?",
           "{name} collected {a} {item} and {name2} collected {b}. How many did they collect together?"),
          ("{a} + {b}",), ("That is {r} altogether.", "Together they have {r}."), _ab(3, 300)),
    Frame(("A baker made {a} loaves in the morning and {b} in the afternoon. How many loaves in total?",
           "If you put {b} more {item} into a box of {a} {item}, how many {item} are in the box?"),
          ("{a} + {b}",), ("There are {r} in total.", "The box has {r} {item}."), _ab(5, 250)),
    Frame(("What is {a} minus {b}?", "Subtract {b} from {a}.", "What is the difference between {a} and {b}?"),
          ("{a} - {b}",), ("The difference is {r}.", "It is {r}."), _bigger_first(10, 9000)),
    Frame(("{name} wants to save ${a} and has saved ${b} so far. How much more does {name} need?",
           "A puzzle has {a} pieces and {b} are in place. How many pieces are still missing?"),
          ("{a} - {b}",), ("{name} needs ${r} more.", "{r} pieces are missing."), _bigger_first(20, 1000)),
    Frame(("A parking lot has {a} spaces and {b} are taken. How many spaces are free?",
           "There are {a} students in a school and {b} are boys. How many are girls?"),
          ("{a} - {b}",), ("{r} spaces are free.", "{r} are girls."), _bigger_first(30, 900)),
    Frame(("A road is {a} km long. A cyclist has ridden {b} km of it. How far is it to the end?",),
          ("{a} - {b}",), ("It is {r} km to the end.",), _bigger_first(10, 400)),
    Frame(("What is {a} times {b}?", "Multiply {a} by {b}.", "What is the product of {a} and {b}?"),
          ("{a} * {b}",), ("The product is {r}.", "It is {r}."), _ab(3, 300, 2, 99)),
    Frame(("A spider has 8 legs. How many legs do {a} spiders have?",), ("{a} * 8",), ("They have {r} legs.",), _ab(2, 60)),
    Frame(("A week has 7 days. How many days are in {a} weeks?",), ("{a} * 7",), ("That is {r} days.",), _ab(2, 60)),
    Frame(("There are {a} teams with {b} players on each team. How many players are there?",
           "A crate holds {b} bottles. How many bottles are in {a} crates?"),
          ("{a} * {b}",), ("There are {r} players.", "There are {r} bottles."), _ab(2, 40)),
    Frame(("{name} practices piano {a} minutes a day. How many minutes is that in {b} days?",
           "A printer prints {a} pages per minute. How many pages does it print in {b} minutes?"),
          ("{a} * {b}",), ("That is {r} minutes.", "It prints {r} pages."), _ab(5, 90, 2, 30)),
    Frame(("What is {a} divided by {b}?", "Divide {a} by {b}.", "How many times does {b} go into {a}?"),
          ("{a} / {b}",), ("The quotient is {r}.", "It is {r}."), _divisible(2, 25, 40)),
    Frame(("{a} students are split into teams of {b}. How many teams are there?",
           "How many groups of {b} can you make from {a} {item}?"),
          ("{a} / {b}",), ("There are {r} teams.", "You can make {r} groups."), _divisible(2, 10, 20)),
    Frame(("{name} read a {a}-page book in {b} days, the same number of pages each day. How many pages a day?",
           "A {a}-liter tank fills {b} equal bottles. How much does each bottle hold?"),
          ("{a} / {b}",), ("{name} read {r} pages a day.", "Each bottle holds {r} liters."), _divisible(2, 12, 30)),
    Frame(("A test has {a} questions and {name} got {pct}% of them right. How many is that?",
           "A town of {a} people grew by {pct}%. How many new people is that?"),
          ("{a} * {pct} / 100",), ("That is {r} questions.", "That is {r} new people."), _percent),
    # two steps
    Frame(("A farm has {a} cows and {b} chickens. How many legs do they have in total?",),
          ("{a} * 4", "{r1} + {b} * 2"), ("They have {r} legs in total.",), _ab(2, 30)),
    Frame(("{name} buys {a} pens at ${p} each and pays with a ${m} bill. How much change does {name} get?",),
          ("{a} * {p}", "{m} - {r1}"), ("{name} gets ${r} in change.",), _change),
    Frame(("A school has {a} classes with {b} students each. {c} students are absent. How many are present?",),
          ("{a} * {b}", "{r1} - {c}"), ("{r} students are present.",), _three),
    Frame(("{name} earns ${a} an hour and works {b} hours a day. How much does {name} earn in {c} days?",),
          ("{a} * {b}", "{r1} * {c}"), ("{name} earns ${r}.",), _three),
    Frame(("A box has {a} red and {b} blue balls. They are split equally into {c} bags. How many balls are in each bag?",),
          ("{a} + {b}", "{r1} / {c}"), ("Each bag has {r} balls.",), _split_sum),
    Frame(("A shirt costs ${a} and a cap costs ${b}. What do {c} shirts and {c} caps cost together?",),
          ("{a} + {b}", "{r1} * {c}"), ("They cost ${r} together.",), _three),
    Frame(("{name} buys {a} boxes of {b} {item} and uses {c} of them. How many {item} remain?",
           "There are {a} crates with {b} {item} in each, and {c} {item} break. How many are whole?"),
          ("{a} * {b}", "{r1} - {c}"), ("{r} {item} remain.", "{r} are whole."), _three),
    Frame(("{name} has {a} bags of {b} {item} and finds {c} more. How many {item} is that?",),
          ("{a} * {b}", "{r1} + {c}"), ("That is {r} {item}.",), _three),
]

# Story problems by theme: each theme tells stories with all four operations in the same words
# (saving money can add, subtract, multiply or divide), so a model must read how the numbers
# relate instead of keying on one word ("saved" -> subtract). Entries: (story, question, answer),
# or a list of such variants.
THEMES = {
    "savings": {
        "+": ("{name} saved ${a} in spring and ${b} in summer.", "How much did {name} save in total?", "{name} saved ${r}."),
        "-": ("{name} saved ${a} and then spent ${b} of it.", "How much money is left?", "${r} is left."),
        "*": ("{name} saves ${b} every week for {a} weeks.", "How much does {name} save?", "{name} saves ${r}."),
        "/": ("{name} saved ${a} in {b} weeks, the same amount each week.", "How much did {name} save each week?",
              "{name} saved ${r} each week."),
    },
    "boxes": {
        "+": ("One box has {a} {item} and another box has {b}.", "How many {item} are in both boxes?", "Both boxes hold {r} {item}."),
        "-": ("A box had {a} {item}, and {b} were taken out.", "How many {item} are still in the box?", "{r} {item} are still in it."),
        "*": ("{a} boxes hold {b} {item} each.", "How many {item} are in the boxes?", "There are {r} {item}."),
        "/": [("{a} {item} are put into boxes, {b} in each box.", "How many boxes are needed?", "{r} boxes are needed."),
              ("{name} packs {a} {item} into bags of {b}.", "How many bags does {name} fill?", "{name} fills {r} bags."),
              ("{a} {item} are packed in cartons of {b}.", "How many cartons are there?", "There are {r} cartons."),
              ("{a} {item} are sorted into jars of {b}.", "How many jars are full?", "{r} jars are full."),
              ("{name} puts {a} {item} into crates that hold {b} each.", "How many crates are used?", "{r} crates are used."),
              ("{a} {item} are wrapped in packs of {b}.", "How many packs are made?", "{r} packs are made.")],
    },
    "travel": {
        "+": ("A bus drove {a} km before noon and {b} km after noon.", "How far did it drive in all?", "It drove {r} km."),
        "-": ("A trip is {a} km long and {b} km are done.", "How many km are left?", "{r} km are left."),
        "*": [("A truck drives {b} km per hour.", "How far does it drive in {a} hours?", "It drives {r} km."),
              ("A plane flies {b} kilometers each hour.", "What distance is flown in {a} hours?", "It flies {r} kilometers.")],
        "/": ("A car drove {a} km in {b} hours at a steady speed.", "How many km did it drive each hour?", "{r} km each hour."),
    },
    "lengths": {
        "+": ("A board of {a} cm is joined to a board of {b} cm.", "How long is the new board?", "It is {r} cm long."),
        "-": ("{b} cm is cut off a rope that is {a} cm long.", "How long is the rest of the rope?", "The rest is {r} cm."),
        "*": ("A fence has {a} sections, each {b} m long.", "How long is the fence?", "The fence is {r} m long."),
        "/": ("A {a} m rope is cut into {b} equal parts.", "How long is each part?", "Each part is {r} m long."),
    },
    "shopping": {
        "+": ("{name} bought a book for ${a} and a game for ${b}.", "How much did {name} spend?", "{name} spent ${r}."),
        "-": [("A coat costs ${a} and {name} has ${b}.", "How much more money does {name} need?", "{name} needs ${r} more."),
              ("{name} needs ${a} for a bike and already has ${b}.", "How much more is needed?", "${r} more is needed.")],
        "*": ("{name} buys {a} notebooks at ${b} each.", "What is the total price?", "The total is ${r}."),
        "/": [("{b} friends split a ${a} bill equally.", "How much does each friend pay?", "Each pays ${r}."),
              ("A cake costs ${a} and is shared by {b} people who pay equal parts.", "What does each person pay?",
               "Each person pays ${r}."),
              ("A ${a} gift is bought by {b} friends together, in equal shares.", "How much is one share?",
               "One share is ${r}.")],
    },
    "collecting": {
        "+": ("{name} collected {a} {item} and then {b} more.", "How many {item} does {name} have?", "{name} has {r} {item}."),
        "-": [("{name} wants {a} {item} and already has {b}.", "How many more {item} does {name} need?",
               "{name} needs {r} more {item}."),
              ("A game needs {a} {item} and {name} has only {b}.", "How many more {item} are needed?",
               "{r} more {item} are needed."),
              ("{name} has {b} {item} but needs {a}.", "How many more must {name} get?", "{name} must get {r} more.")],
        "*": ("{name} collected {b} {item} on each of {a} days.", "How many {item} did {name} collect?", "{name} collected {r} {item}."),
        "/": ("{name} collected {a} {item} in {b} days, the same number each day.", "How many {item} a day?", "{r} {item} a day."),
    },
    "school": {
        "+": ("A school has {a} girls and {b} boys.", "How many children go to the school?", "{r} children go there."),
        "-": ("Of {a} students, {b} went home early.", "How many students stayed?", "{r} students stayed."),
        "*": ("There are {a} classes with {b} students in each.", "How many students are there altogether?", "There are {r} students."),
        "/": [("{a} students form teams of {b}.", "How many teams are there?", "There are {r} teams."),
              ("{a} pupils sit at tables of {b}.", "How many tables are filled?", "{r} tables are filled.")],
    },
}
GENERIC_QUESTIONS = {"+": ["What is the total?", "How many is that altogether?"], "-": ["How many are left?", "What remains?"],
                     "*": ["What is the total?", "How many is that in all?"], "/": []}
PERCENT = [("What is {pct}% of {a}?", "It is {r}."), ("Find {pct} percent of {a}.", "It is {r}."),
           ("{pct}% of the {a} {item} are red. How many are red?", "{r} are red."),
           ("A ${a} coat is {pct}% off. How much money do you save?", "You save ${r}."),
           ("{a} students are in a class, and {pct}% of them are girls. How many girls are there?", "There are {r} girls.")]


DIRECT_QUESTIONS = ["What is {e}?", "Calculate {e}.", "Compute {e}", "How much is {e}?", "{e} = ?",
                    "Can you work out {e}?", "Please evaluate {e}.", "what's {e}", "Tell me the value of {e}."]
DIRECT_ANSWERS = ["The result is {r}.", "It equals {r}.", "The answer is {r}."]

NO_TOOL = [
    (("Hi!", "Hello", "Hey there!", "Good morning!"), "Hello! How can I help you today?"),
    (("Who are you?", "What are you?"), "I am an AI assistant. I answer questions and use a calculator for arithmetic."),
    (("What can you do?", "How can you help me?"), "I can answer questions, and I use tools such as a calculator when a question needs one."),
    (("Thank you!", "Thanks a lot.", "Thanks!"), "You're welcome!"),
    (("What is the capital of France?", "Which city is the capital of France?"), "The capital of France is Paris."),
    (("What is the capital of Japan?",), "The capital of Japan is Tokyo."),
    (("Which planet is known as the Red Planet?",), "Mars is known as the Red Planet."),
    (("What color is the sky on a clear day?",), "The sky is blue on a clear day."),
    (("What is the opposite of hot?",), "The opposite of hot is cold."),
    (("How do you say hello in Spanish?", "Translate 'hello' into Spanish."), "Hello in Spanish is 'hola'."),
    (("What language is spoken in Brazil?",), "Portuguese is the main language of Brazil."),
    (("Name a primary color.",), "Red is a primary color."),
    (("What do bees make?",), "Bees make honey."),
    (("Tell me a fun fact.",), "Octopuses have three hearts."),
    (("Can you recommend a good habit?",), "Drinking enough water every day is a good habit."),
    (("What is water made of?",), "Water is made of hydrogen and oxygen."),
]

ERRORS = [  # (question, expression, answer): the calculator refuses, the assistant explains
    ("What is {a} divided by 0?", "{a} / 0", "Division by zero is undefined, so {a} / 0 has no answer."),
    ("Share {a} apples among 0 people: how many does each get?", "{a} / 0",
     "That cannot be done: dividing by zero is undefined."),
    ("What is the square root of -{a}?", "sqrt(-{a})", "A negative number has no real square root."),
    ("What is {a} to the power of 100000?", "{a} ** 100000", "That number is too large for the calculator to compute."),
]

EQUATIONS = [  # (question, equations, answer)
    ("Solve {a}x + {b} = {c}.", "{a}x + {b} = {c}", "The solution is {r}."),
    ("Find x if x^2 - {s}x + {p} = 0.", "x^2 - {s}x + {p} = 0", "The solutions are {r}."),
    ("Solve the system x + y = {s}, x - y = {d}.", "x + y = {s}, x - y = {d}", "The solution is {r}."),
    ("The sum of two numbers is {s} and their difference is {d}. What are they?", "x + y = {s}, x - y = {d}",
     "The numbers are {r}."),
]

PROGRAMS = [  # (question, code, answer)
    ("Use Python to add up the squares of 1 to {n}.", "print(sum(i * i for i in range(1, {n} + 1)))",
     "The sum of the squares is {r}."),
    ("How many primes are there below {n}? Use code.",
     "print(sum(all(k % d for d in range(2, int(k ** 0.5) + 1)) for k in range(2, {n})))",
     "There are {r} primes below {n}."),
    ("What is {n} factorial? Compute it with Python.", "import math\nprint(math.factorial({n}))", "{n}! is {r}."),
    ("Reverse the word '{w}' with Python.", "print('{w}'[::-1])", "Reversed, it is '{r}'."),
]
WORDS = ["python", "agent", "sandbox", "lantern", "giraffe", "harbor", "meadow", "rocket"]


class Writer:
    """Builds one conversation, running the real tools for the results."""

    def __init__(self, actions: dict[str, Any], rng: random.Random):
        self.actions, self.rng = actions, rng
        self.messages: list[dict] = []

    def user(self, text: str) -> "Writer":
        self.messages.append({"role": "user", "content": text})
        return self

    def call(self, tool: str, parameters: dict) -> tuple[bool, str]:
        """Add a call and its real result; returns (succeeded, result text). The call is written
        without a thought before it: a lean reply, and the record stays a strict alternation
        (user, assistant, environment, assistant...) that every reader of `messages` accepts."""
        if tool == PYTHON:
            self.messages.append({"role": "assistant", "name": "interpreter", "content": parameters["command"]})
            kind = "interpreter"
        else:
            content = json.dumps({"name": tool, "parameters": parameters})  # as lagent's format_plugin dumps it
            self.messages.append({"role": "assistant", "name": "plugin", "content": content})
            kind = "plugin"
        result = self.actions[tool](parameters)
        ok = result.state == 0
        text = result.format_result() if ok else str(result.errmsg)
        self.messages.append({"role": "environment", "name": kind, "content": text})
        return ok, text

    def answer(self, text: str) -> list[dict]:
        self.messages.append({"role": "assistant", "content": text})
        return self.messages


def _fill(template: str, values: dict) -> str:
    return template.format(**values)


def _signs(text: str) -> str:
    """'x + -3' → 'x - 3' and 'x - -3' → 'x + 3', as a person writes it."""
    return text.replace("+ -", "- ").replace("- -", "+ ")


def word_problem(writer: Writer, frames: list[Frame]) -> list[dict] | None:
    rng = writer.rng
    frame = rng.choice(frames)
    name, name2 = rng.sample(NAMES, 2)
    values = {"name": name, "name2": name2, "item": rng.choice(ITEMS), **frame.numbers(rng)}
    variant = rng.randrange(len(frame.questions))
    writer.user(_fill(frame.questions[variant], values))
    for index, expression in enumerate(frame.expressions):
        ok, result = writer.call(CALCULATOR, {"expression": _fill(expression, values)})
        if not ok:
            return None
        values[f"r{index + 1}"] = values["r"] = result
    paired = len(frame.answers) == len(frame.questions)
    return writer.answer(_fill(frame.answers[variant] if paired else rng.choice(frame.answers), values))


def _story_numbers(operation: str, money: bool, rng: random.Random) -> dict:
    """Numbers of overlapping sizes for every operation, so that sizes do not give it away; one
    problem in five runs into the thousands."""
    small, any_size = rng.randint(2, 12), rng.choice([rng.randint(2, 40), rng.randint(20, 300)])
    big = rng.random() < 0.2
    if operation == "*":
        return {"a": small, "b": rng.choice([1.5, 2.25, 4.5, 0.75, 12.5, 3, 8, 6.4]) if money
                else rng.randint(100, 900) if big else any_size}
    if operation == "/":
        return {"a": small * (rng.randint(90, 800) if big else any_size), "b": small}
    if big:
        a, b = rng.randint(1000, 9900), rng.choice([rng.randint(100, 999), rng.randint(1000, 4000)])
    else:
        a, b = rng.choice([rng.randint(5, 60), rng.randint(20, 900)]), rng.choice([small, any_size])
    if money and rng.random() < 0.4:  # prices with cents: decimals must be copied whole
        a, b = a + rng.choice([0.5, 0.25, 0.75, 0.99, 0.4]), b + rng.choice([0.5, 0.25, 0.1, 0.95])
    return {"a": round(a + b, 2), "b": b} if operation == "-" else {"a": a, "b": b}


def written(value: Any, language: str, rng: random.Random) -> str:
    """A number as a question writes it: money with two decimals at times ("4.50"), and English
    thousands with separators more often than not ("1,250"); the expression always gets the
    plain number, so the model learns to copy the value, not the characters."""
    cents = ".2f" if isinstance(value, float) and rng.random() < 0.5 else ""
    separators = "," if language == "en" and value >= 1000 and rng.random() < 0.7 else ""
    return f"{value:{separators}{cents}}"


def _expression(a: Any, operation: str, b: Any, rng: random.Random) -> str:
    """`a OP b`, the operands of + and * in either order (the question's order is not the rule)."""
    if operation in "+*" and rng.random() < 0.4:
        a, b = b, a
    return f"{a} {operation} {b}"


def _slots(language: str, rng: random.Random) -> dict:
    """Names and an item (with its measure word in Chinese) for a story."""
    if language == "zh":
        name, name2 = rng.sample(zh.NAMES, 2)
        item, measure = rng.choice(zh.ITEMS)
        return {"name": name, "name2": name2, "item": item, "m": measure}
    name, name2 = rng.sample(NAMES, 2)
    return {"name": name, "name2": name2, "item": rng.choice(ITEMS), "m": ""}


def story_problem(writer: Writer, language: str = "en") -> list[dict] | None:
    rng = writer.rng
    themes = zh.THEMES if language == "zh" else THEMES
    theme = themes[rng.choice(list(themes))]
    operation = rng.choice(list(theme))
    variants = theme[operation]
    if language == "zh":
        text, answer = rng.choice(variants)
        money = "元" in text
        if rng.random() < 0.15 and zh.GENERIC_QUESTIONS[operation]:  # the story, then a bare question
            text, answer = text[:text.rindex("，") + 1] + rng.choice(zh.GENERIC_QUESTIONS[operation]), zh.GENERIC_ANSWER
    else:
        story, question, answer = rng.choice(variants) if isinstance(variants, list) else variants
        money = "$" in story
        if not money and rng.random() < 0.3 and GENERIC_QUESTIONS[operation]:
            question, answer = rng.choice(GENERIC_QUESTIONS[operation]), "The answer is {r}."
        text = f"{story} {question}"
    values = {**_slots(language, rng), **_story_numbers(operation, money, rng)}
    shown = {**values, "a": written(values["a"], language, rng), "b": written(values["b"], language, rng)}
    writer.user(_fill(text, shown))
    ok, result = writer.call(CALCULATOR, {"expression": _expression(values["a"], operation, values["b"], rng)})
    if not ok:
        return None
    return writer.answer(_fill(answer, {**shown, "r": result}))


def two_step_zh(writer: Writer) -> list[dict] | None:
    rng = writer.rng
    question, expressions, answer = rng.choice(zh.TWO_STEP)
    values = {**_slots("zh", rng), **_three(rng)}
    if "{r1} - {c}" in expressions:
        values["c"] = rng.randint(1, values["a"] * values["b"] - 1)
    elif "{r1} / {c}" in expressions:
        values.update(_split_sum(rng))
    writer.user(_fill(question, values))
    for index, expression in enumerate(expressions):
        ok, result = writer.call(CALCULATOR, {"expression": _fill(expression, values)})
        if not ok:
            return None
        values[f"r{index + 1}"] = values["r"] = result
    return writer.answer(_fill(answer, values))


GROUPING = {  # "N things go into containers of K": division, phrased the way multiplication often is
    "verbs": ["put", "sorted", "split", "grouped", "loaded", "divided"],
    "containers": [("bag", "bags"), ("crate", "crates"), ("jar", "jars"), ("carton", "cartons"), ("tray", "trays"),
                   ("basket", "baskets"), ("box", "boxes")],
    "questions": [("How many {c} are needed?", "{r} {c} are needed."), ("How many {c} does that make?", "That makes {r} {c}."),
                  ("How many {c} are used?", "{r} {c} are used."), ("How many full {c} are there?", "There are {r} full {c}.")],
    # ... and its contrast, the same container multiplying: "a {c1} holds K; how many in N {c}"
    "full": [("A {c1} holds {b} {item}.", "How many {item} are in {a} {c}?", "There are {r} {item} in {a} {c}."),
             ("Each {c1} has {b} {item} in it.", "How many {item} do {a} {c} have?", "{a} {c} have {r} {item}."),
             ("There are {b} {item} in one {c1}.", "How many {item} are there in {a} {c}?", "There are {r} {item}.")],
}


def grouping_problem(writer: Writer) -> list[dict] | None:
    rng = writer.rng
    one, many = rng.choice(GROUPING["containers"])
    item = rng.choice(ITEMS)
    if rng.random() < 0.4:
        numbers = _story_numbers("*", False, rng)
        story, question, answer = rng.choice(GROUPING["full"])
        values = {**numbers, "c1": one, "c": many, "item": item}
        writer.user(_fill(f"{story} {question}", values))
        ok, result = writer.call(CALCULATOR, {"expression": _expression(numbers["b"], "*", numbers["a"], rng)})
        return writer.answer(_fill(answer, {**values, "r": result})) if ok else None
    numbers = _story_numbers("/", False, rng)
    question, answer = rng.choice(GROUPING["questions"])
    writer.user(f"{written(numbers['a'], 'en', rng)} {item} are {rng.choice(GROUPING['verbs'])} into {many} of {numbers['b']}. "
                + question.format(c=many))
    ok, result = writer.call(CALCULATOR, {"expression": f"{numbers['a']} / {numbers['b']}"})
    return writer.answer(answer.format(c=many, r=result)) if ok else None


RATES = [  # "R per unit, for T units": multiplication, though the story gives two numbers and a "per"
    ("A pump moves {b} liters every minute.", "How many liters does it move in {a} minutes?", "It moves {r} liters."),
    ("A machine makes {b} {item} each hour.", "How many {item} does it make in {a} hours?", "It makes {r} {item}."),
    ("{name} earns ${b} every hour.", "How much does {name} earn in {a} hours?", "{name} earns ${r}."),
    ("A snail crawls {b} cm each minute.", "How far does it crawl in {a} minutes?", "It crawls {r} cm."),
    ("A runner goes {b} meters every minute.", "How many meters in {a} minutes?", "{r} meters."),
    ("A tap drips {b} drops each second.", "How many drops fall in {a} seconds?", "{r} drops fall."),
]


def rate_problem(writer: Writer) -> list[dict] | None:
    rng = writer.rng
    story, question, answer = rng.choice(RATES)
    values = {"name": rng.choice(NAMES), "item": rng.choice(ITEMS), **_story_numbers("*", "$" in story, rng)}
    writer.user(_fill(f"{story} {question}", values))
    ok, result = writer.call(CALCULATOR, {"expression": f"{values['b']} * {values['a']}"})
    return writer.answer(_fill(answer, {**values, "r": result})) if ok else None


def percent_problem(writer: Writer, language: str = "en") -> list[dict] | None:
    rng = writer.rng
    question, answer = rng.choice(zh.PERCENT if language == "zh" else PERCENT)
    values = {**_slots(language, rng), **_percent(rng)}
    writer.user(_fill(question, values))
    ok, result = writer.call(CALCULATOR, {"expression": _fill("{a} * {pct} / 100", values)})
    return writer.answer(_fill(answer, {**values, "r": result})) if ok else None


def direct(writer: Writer, language: str = "en") -> list[dict] | None:
    rng = writer.rng
    a, b, c = rng.randint(2, 999), rng.randint(2, 99), rng.randint(2, 50)
    expression = rng.choice([f"{a} + {b}", f"{a} - {b}", f"{a} * {b}", f"{a * b} / {b}", f"({a} + {b}) * {c}",
                             f"{a} * {b} - {c}", f"{b} ** 2", f"{a} / {c}", f"({a} - {b}) / {c}"])
    if language == "zh":
        shown = "".join(zh.SYMBOLS.get(char, char) for char in expression) if rng.random() < 0.6 else expression
        question, answer = rng.choice(zh.DIRECT_QUESTIONS), rng.choice(zh.DIRECT_ANSWERS)
    else:
        shown, question, answer = expression, rng.choice(DIRECT_QUESTIONS), rng.choice(DIRECT_ANSWERS)
    writer.user(_fill(question, {"e": shown}))
    ok, result = writer.call(CALCULATOR, {"expression": expression})
    return writer.answer(_fill(answer, {"e": shown, "r": result})) if ok else None


def no_tool(writer: Writer, language: str = "en") -> list[dict]:
    questions, answer = writer.rng.choice(zh.NO_TOOL if language == "zh" else NO_TOOL)
    return writer.user(writer.rng.choice(questions)).answer(answer)


def tool_error(writer: Writer) -> list[dict] | None:
    question, expression, answer = writer.rng.choice(ERRORS)
    values = {"a": writer.rng.randint(2, 99)}
    writer.user(_fill(question, values))
    ok, _ = writer.call(CALCULATOR, {"expression": _fill(expression, values)})
    return None if ok else writer.answer(_fill(answer, values))


def equation(writer: Writer) -> list[dict] | None:
    rng = writer.rng
    question, equations, answer = rng.choice(EQUATIONS)
    x, y = rng.randint(-9, 12), rng.randint(-9, 12)
    a = rng.randint(2, 9)
    values = {"a": a, "b": rng.randint(1, 30), "s": x + y, "d": x - y, "p": x * y}
    values["c"] = a * x + values["b"]
    writer.user(_signs(_fill(question, values)))
    ok, result = writer.call(SOLVER, {"equations": _signs(_fill(equations, values))})
    return writer.answer(_fill(answer, {"r": result})) if ok else None


def program(writer: Writer) -> list[dict] | None:
    rng = writer.rng
    question, code, answer = rng.choice(PROGRAMS)
    values = {"n": rng.randint(5, 60), "w": rng.choice(WORDS)}
    if "factorial" in question:
        values["n"] = rng.randint(3, 20)
    writer.user(_fill(question, values))
    ok, result = writer.call(PYTHON, {"command": _fill(code, values)})
    if ok:
        return writer.answer(_fill(answer, {**values, "r": result.strip()}))
    return writer.answer("The code failed: " + result.strip().splitlines()[-1])


def program_error(writer: Writer) -> list[dict]:
    rng = writer.rng
    n = rng.randint(2, 50)
    writer.user(rng.choice(["Run this Python: print({n} / 0)", "What does print({n} / 0) do in Python?"]).format(n=n))
    _, result = writer.call(PYTHON, {"command": f"print({n} / 0)"})
    return writer.answer(f"It raises an error: {result.strip().splitlines()[-1]}")


def generate(count: int, tools: Iterable[str] = ("calculator",), protocol: str = "internlm2", seed: int = 0,
             questions: int = 1) -> list[dict]:
    """`count` conversations for `tools` (names: calculator, solve, python) and `protocol`, each
    with `questions` user questions in a row (later ones see the earlier turns, as in a chat
    with the agent; the tool descriptions are then shared by several answers)."""
    check_protocol(protocol)
    if count < 1 or questions < 1:
        raise TunechatError(f"count and questions must be at least 1, got {count} and {questions}")
    actions = {action.name: action for action in resolve_tools(tools)}
    if not actions:
        raise TunechatError("give at least one tool (calculator, solve, python)")
    names = tool_names(actions.values())
    kinds: list[tuple[Callable[[Writer], Any], float]] = [(no_tool, 0.08), (lambda w: no_tool(w, "zh"), 0.06)]
    if CALCULATOR in actions:
        two_step = [f for f in FRAMES if len(f.expressions) > 1]  # extra weight: the model must not stop after step one
        kinds += [(story_problem, 0.2), (grouping_problem, 0.07), (rate_problem, 0.05), (percent_problem, 0.04),
                  (lambda w: word_problem(w, FRAMES), 0.12), (lambda w: word_problem(w, two_step), 0.05), (direct, 0.02),
                  (tool_error, 0.04),
                  (lambda w: story_problem(w, "zh"), 0.32), (two_step_zh, 0.05), (lambda w: percent_problem(w, "zh"), 0.03),
                  (lambda w: direct(w, "zh"), 0.03)]
    if SOLVER in actions:
        kinds += [(equation, 0.2)]
    if PYTHON in actions:
        kinds += [(program, 0.15), (program_error, 0.03)]
    rng = random.Random(seed)
    records: list[dict] = []
    while len(records) < count:
        writer = Writer(actions, rng)
        asked = 0
        while asked < questions:
            kind = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
            mark = len(writer.messages)
            if kind(writer) is None:  # e.g. a problem whose numbers the tool refused: drop it
                del writer.messages[mark:]
            else:
                asked += 1
        records.append({"messages": writer.messages, "tools": names, "protocol": protocol})
    return records

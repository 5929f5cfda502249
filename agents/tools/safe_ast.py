"""Untrusted expression text → a checked Python AST → a value, without `eval`.

The calculator and the equation solver both read text a model wrote. They parse it with
`ast.parse` (which only builds a tree, never runs anything) and fold the tree with an explicit
table of what is allowed: numbers, a few operators, whitelisted names and functions. Anything
else (attributes, subscripts, lambdas, strings, keyword arguments...) is refused with a message
the model can act on."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable

MAX_CHARS = 500
MAX_NODES = 300

SYMBOLS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.UAdd: "+", ast.USub: "-", ast.BitXor: "^", ast.BitAnd: "&", ast.BitOr: "|",
    ast.LShift: "<<", ast.RShift: ">>", ast.MatMult: "@", ast.Invert: "~", ast.Not: "not",
}


class ExpressionError(ValueError):
    """The expression is malformed, not allowed, or too big; the message says which."""


@dataclass
class Rules:
    """What an expression may contain, and what each allowed piece means."""

    constant: Callable[[Any], Any]
    binary: dict[type, Callable[[Any, Any], Any]]
    unary: dict[type, Callable[[Any], Any]]
    names: Callable[[str], Any]
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)


def parse(text: str, max_chars: int = MAX_CHARS, max_nodes: int = MAX_NODES) -> ast.expr:
    """Parse one expression, bounding its length and size before anything is computed."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected the expression as text, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ExpressionError("the expression is empty")
    if len(text) > max_chars:
        raise ExpressionError(f"the expression is too long ({len(text)} characters, at most {max_chars})")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        reason = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        raise ExpressionError(f"cannot parse {text!r}: {reason}") from None
    if sum(1 for _ in ast.walk(tree)) > max_nodes:
        raise ExpressionError(f"the expression is too complex (more than {max_nodes} parts)")
    return tree.body


def fold(node: ast.AST, rules: Rules) -> Any:
    """Compute the value of a parsed expression under `rules`."""
    if isinstance(node, ast.Constant):
        return rules.constant(node.value)
    if isinstance(node, ast.BinOp):
        return _operator(rules.binary, node.op)(fold(node.left, rules), fold(node.right, rules))
    if isinstance(node, ast.UnaryOp):
        return _operator(rules.unary, node.op)(fold(node.operand, rules))
    if isinstance(node, ast.Name):
        return rules.names(node.id)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in rules.functions:
            allowed = ", ".join(sorted(rules.functions)) or "none"
            raise ExpressionError(f"only these functions may be called: {allowed}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{node.func.id}() takes plain positional arguments only")
        return rules.functions[node.func.id](*(fold(a, rules) for a in node.args))
    raise ExpressionError(f"{_describe(node)} is not allowed in an expression")


def _operator(table: dict[type, Callable[..., Any]], op: ast.AST) -> Callable[..., Any]:
    if type(op) not in table:
        raise ExpressionError(f"the operator {SYMBOLS.get(type(op), type(op).__name__)!r} is not allowed")
    return table[type(op)]


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda",
        ast.Compare: "a comparison", ast.BoolOp: "and/or", ast.IfExp: "if/else",
        ast.Tuple: "a tuple (write numbers without thousands separators)", ast.List: "a list",
        ast.Dict: "a dict", ast.Set: "a set", ast.JoinedStr: "an f-string",
    }
    return names.get(type(node), type(node).__name__)

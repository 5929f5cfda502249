"""A test oracle: an interpreter for the subset of Go's text/template that Ollama TEMPLATEs use and
tunechat writes (`if`/`else if`/`else`/`end`, `range .Messages`, `eq .Role "..."`, `.System`,
`.Content`), evaluated as Ollama evaluates them: `.Messages` holds every message, the system
one included, and the template's output is the prompt the model continues.

Anything outside the subset raises, so a Modelfile that needs more of Go than this cannot pass
by being misread."""
from __future__ import annotations

import re
from typing import Any

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def render(template: str, system: str | None, messages: list[dict[str, str]]) -> str:
    nodes, rest = _parse(_lex(template), stop=())
    assert not rest, f"unbalanced template near {rest[:1]}"
    data = {"System": system or "", "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}
    return _run(nodes, data, data)


def _lex(template: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    for match in _ACTION.finditer(template):
        if match.group(1) or match.group(3):
            raise ValueError("whitespace trimming ({{- -}}) is outside the supported subset")
        tokens.append(("text", template[at:match.start()]))
        tokens.append(("action", match.group(2)))
        at = match.end()
    tokens.append(("text", template[at:]))
    return [t for t in tokens if t != ("text", "")]


def _parse(tokens: list[tuple[str, str]], stop: tuple[str, ...]) -> tuple[list[Any], list[tuple[str, str]]]:
    nodes: list[Any] = []
    while tokens:
        kind, value = tokens[0]
        if kind == "action" and (value in stop or value.startswith("else")) and stop:
            return nodes, tokens
        tokens = tokens[1:]
        if kind == "text":
            nodes.append(("text", value))
        elif value.startswith("if "):
            nodes.append(_parse_if(value[3:], tokens))
            tokens = nodes[-1][3]
            nodes[-1] = nodes[-1][:3]
        elif value == "range .Messages":
            body, tokens = _parse(tokens, stop=("end",))
            assert tokens and tokens[0] == ("action", "end"), "range without end"
            tokens = tokens[1:]
            nodes.append(("range", body))
        elif value in (".System", ".Content"):
            nodes.append(("field", value[1:]))
        else:
            raise ValueError(f"unsupported action {{{{ {value} }}}}")
    return nodes, tokens


def _parse_if(condition: str, tokens: list[tuple[str, str]]) -> tuple[str, str, Any, list]:
    then, tokens = _parse(tokens, stop=("end",))
    otherwise: list[Any] = []
    kind, value = tokens[0]
    tokens = tokens[1:]
    if value.startswith("else if "):
        node = _parse_if(value[8:], tokens)
        otherwise, tokens = [node[:3]], node[3]
    elif value == "else":
        otherwise, tokens = _parse(tokens, stop=("end",))
        assert tokens[0] == ("action", "end"), "else without end"
        tokens = tokens[1:]
    else:
        assert value == "end", f"if closed by {value}"
    return ("if", condition, (then, otherwise), tokens)


def _truth(condition: str, scope: dict[str, Any]) -> bool:
    if condition in (".System", ".Content"):
        return bool(scope[condition[1:]])
    match = re.fullmatch(r'eq \.Role "(\w+)"', condition)
    if not match:
        raise ValueError(f"unsupported condition {condition!r}")
    return scope["Role"] == match.group(1)


def _run(nodes: list[Any], scope: dict[str, Any], root: dict[str, Any]) -> str:
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "field":
            out.append(scope[node[1]])
        elif node[0] == "range":
            out.extend(_run(node[1], message, root) for message in root["Messages"])
        else:
            then, otherwise = node[2]
            out.append(_run(then if _truth(node[1], scope) else otherwise, scope, root))
    return "".join(out)

"""Relaxed patterns: a short regular expression that every match of a longer one also matches, for prefilters."""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

# A counted repetition is cut to this many: the prefilter needs a few characters of a token, not all.
MAX_COUNT = 16

_CATEGORIES = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_NOT_DIGIT: r"\D",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_NOT_SPACE: r"\S",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_WORD: r"\W",
}
_ANCHORS = {
    sre.AT_BEGINNING: "^",
    sre.AT_BEGINNING_STRING: r"\A",
    sre.AT_END: "$",
    sre.AT_END_STRING: r"\z",
    sre.AT_BOUNDARY: r"\b",
    sre.AT_NON_BOUNDARY: r"\B",
}
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)


def _char(code: int, in_class: bool = False) -> str:
    ch = chr(code)
    if (ch.isascii() and ch.isalnum()) or ch == "_" or (in_class and ch.isprintable() and ch not in "\\]^-["):
        return ch
    return f"\\x{code:02x}" if code < 0x100 else f"\\x{{{code:x}}}"


def _class(items: list[tuple[Any, Any]]) -> str:
    out = []
    for op, av in items:
        if op is sre.NEGATE:
            out.append("^")
        elif op is sre.LITERAL:
            out.append(_char(av, in_class=True))
        elif op is sre.RANGE:
            out.append(f"{_char(av[0], True)}-{_char(av[1], True)}")
        elif op is sre.CATEGORY:
            out.append(_CATEGORIES[av])
        else:
            raise ValueError(f"unsupported class item {op}")
    return "[" + "".join(out) + "]"


def unparse(nodes: Any) -> str:
    """RE2 source for parsed nodes (the subset of syntax credential patterns use)."""
    out = []
    for op, av in nodes:
        if op is sre.LITERAL:
            out.append(_char(av))
        elif op is sre.NOT_LITERAL:
            out.append(f"[^{_char(av, True)}]")
        elif op is sre.ANY:
            out.append(".")
        elif op is sre.IN:
            out.append(_class(av))
        elif op is sre.AT:
            out.append(_ANCHORS[av])
        elif op is sre.BRANCH:
            out.append("(?:" + "|".join(unparse(branch) for branch in av[1]) + ")")
        elif op is sre.SUBPATTERN:
            _, add, remove, inner = av
            flags = ("i" if add & sre.SRE_FLAG_IGNORECASE else "") + ("-i" if remove & sre.SRE_FLAG_IGNORECASE else "")
            out.append(f"(?{flags}:{unparse(inner)})")
        elif op in _REPEATS:
            lo, hi, inner = av
            body = f"(?:{unparse(inner)})"
            bounds = f"{{{lo},}}" if hi == sre.MAXREPEAT else f"{{{lo},{hi}}}"
            out.append(body + bounds + ("?" if op is sre.MIN_REPEAT else ""))
        else:
            raise ValueError(f"unsupported node {op}")
    return "".join(out)


def _counter(node: tuple[Any, Any]) -> tuple[int, Any] | None:
    """``(minimum, repeated nodes)`` when ``node`` is a long repetition (or a group holding only one)."""
    op, av = node
    if op is sre.SUBPATTERN and len(av[3]) == 1 and not av[1] and not av[2]:
        return _counter(av[3][0])
    if op in _REPEATS:
        lo, hi, inner = av
        if lo >= 2 and (hi == sre.MAXREPEAT or hi > MAX_COUNT):
            return lo, inner
    return None


_WIDE = (sre.IN, sre.ANY, sre.NOT_LITERAL, *_REPEATS)


def relaxed(pattern: str) -> str:
    """A pattern that matches wherever ``pattern`` does, cheaply: what it holds from its first plain
    character up to and including its first long repetition, that repetition cut to `MAX_COUNT`
    (``AKIA[0-9A-Z]{20}`` becomes ``AKIA[0-9A-Z]{16}``, ``[a-z0-9]{32}-us[0-9]{1,2}`` becomes ``-us[0-9]{1,2}``).

    A match of ``pattern`` holds a match of the result (a part of it, with fewer repetitions), so a
    text the result does not match cannot hold a match of ``pattern``. The result is only as rare as
    the plain characters it keeps: a pattern made of classes alone needs a hand-written relaxation.
    """
    parsed = sre_parse.parse(pattern)
    nodes = list(parsed)
    while nodes and nodes[0][0] in _WIDE:
        nodes.pop(0)
    kept: list[tuple[Any, Any]] = []
    for node in nodes:
        counted = _counter(node)
        if counted is not None:
            lo, inner = counted
            kept.append((sre.MAX_REPEAT, (min(lo, MAX_COUNT), min(lo, MAX_COUNT), inner)))
            break
        kept.append(node)
    body = unparse(kept)
    return f"(?i:{body})" if parsed.state.flags & re.IGNORECASE else body

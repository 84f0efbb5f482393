"""A safe evaluator for the expr-lang subset Argo metric conditions use, and a client-go jsonpath subset."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d*(?:[eE][+-]?\d+)?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!+\-*/%().,\[\]])
""",
    re.VERBOSE,
)


class ExprError(Exception):
    """The expression does not parse or cannot be evaluated against ``result``."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group()))
    out.append(("end", ""))
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_float(v: Any) -> float:
    if _is_num(v):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise ExprError(f"asFloat: cannot convert {v!r}") from None
    raise ExprError(f"asFloat: cannot convert {v!r}")


def _as_int(v: Any) -> int:
    if _is_num(v):
        return int(v)
    if isinstance(v, str):
        try:
            return int(float(v))
        except ValueError:
            raise ExprError(f"asInt: cannot convert {v!r}") from None
    raise ExprError(f"asInt: cannot convert {v!r}")


_FUNCS: dict[str, tuple[int, Callable[..., Any]]] = {
    "asFloat": (1, _as_float),
    "asInt": (1, _as_int),
    "isNaN": (1, lambda v: _is_num(v) and math.isnan(v)),
    "isInf": (1, lambda v: _is_num(v) and math.isinf(v)),
    "isNil": (1, lambda v: v is None),
    "default": (2, lambda v, d: d if v is None else v),
    "len": (1, lambda v: len(v)),
}


class _Parser:
    def __init__(self, text: str, env: dict[str, Any]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.env = env

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        _kind, text = self.take()
        if text != value:
            raise ExprError(f"expected {value!r}, got {text!r}")

    def parse(self) -> Any:
        value = self.or_()
        if self.peek()[0] != "end":
            raise ExprError(f"unexpected {self.peek()[1]!r}")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.peek()[1] in ("||", "or"):
            self.take()
            right = self.and_()
            left = _bool(left) or _bool(right)
        return left

    def and_(self) -> Any:
        left = self.cmp()
        while self.peek()[1] in ("&&", "and"):
            self.take()
            right = self.cmp()
            left = _bool(left) and _bool(right)
        return left

    def cmp(self) -> Any:
        left = self.add()
        while self.peek()[1] in ("==", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            right = self.add()
            left = _compare(op, left, right)
        return left

    def add(self) -> Any:
        left = self.mul()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            right = self.mul()
            if op == "+" and isinstance(left, str) and isinstance(right, str):
                left = left + right
            else:
                _need_nums(op, left, right)
                left = left + right if op == "+" else left - right
        return left

    def mul(self) -> Any:
        left = self.unary()
        while self.peek()[1] in ("*", "/", "%"):
            op = self.take()[1]
            right = self.unary()
            _need_nums(op, left, right)
            if op == "*":
                left = left * right
            elif op == "/":
                left = float(left) / right if right else (math.inf if left else math.nan)
            else:
                left = left % right
        return left

    def unary(self) -> Any:
        if self.peek()[1] in ("!", "not"):
            self.take()
            return not _bool(self.unary())
        if self.peek()[1] in ("-", "+"):
            op = self.take()[1]
            value = self.unary()
            _need_nums(op, value, 0)
            return -value if op == "-" else value
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "name":
                    raise ExprError(f"expected a field name, got {name!r}")
                value = _member(value, name)
            else:
                key = self.or_()
                self.expect("]")
                value = _member(value, key)
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        if text == "(":
            value = self.or_()
            self.expect(")")
            return value
        if kind == "name":
            if text == "true":
                return True
            if text == "false":
                return False
            if text in ("nil", "null"):
                return None
            if self.peek()[1] == "(" and text in _FUNCS:
                self.take()
                args = []
                if self.peek()[1] != ")":
                    args.append(self.or_())
                    while self.peek()[1] == ",":
                        self.take()
                        args.append(self.or_())
                self.expect(")")
                arity, fn = _FUNCS[text]
                if len(args) != arity:
                    raise ExprError(f"{text} takes {arity} argument(s)")
                return fn(*args)
            if text in self.env:
                return self.env[text]
            raise ExprError(f"unknown name {text!r}")
        raise ExprError(f"unexpected {text!r}")


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ExprError(f"expected bool, got {_type(v)}")
    return v


def _type(v: Any) -> str:
    if v is None:
        return "nil"
    return {
        bool: "bool",
        int: "int",
        float: "float64",
        str: "string",
        list: "[]interface {}",
        dict: "map[string]interface {}",
    }.get(type(v), type(v).__name__)


def _need_nums(op: str, a: Any, b: Any) -> None:
    if not (_is_num(a) and _is_num(b)):
        raise ExprError(f"invalid operation: {_type(a)} {op} {_type(b)}")


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return a == b and (type(a) is bool) == (type(b) is bool)
    if op == "!=":
        return not _compare("==", a, b)
    if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        raise ExprError(f"invalid operation: {_type(a)} {op} {_type(b)}")
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _member(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and _is_num(key):
        index = int(key)
        if -len(value) <= index < len(value):
            return value[index]
        raise ExprError(f"index out of range: {index} (array length is {len(value)})")
    raise ExprError(f"cannot fetch {key!r} from {_type(value)}")


def evaluate(expression: str, result: Any) -> Any:
    """Evaluate ``expression`` with ``result`` bound; raises :class:`ExprError`, never runs Python code."""
    return _Parser(expression, {"result": result}).parse()


# -- jsonpath ------------------------------------------------------------------------------------

_JP_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


class JSONPathMissing(Exception):
    """The path names a key that the body does not have."""


def jsonpath(expression: str, body: Any) -> Any:
    """``{$}``, ``{$.a.b[0]}``, ``{.a}``, ``{$['k']}``: the first (only) match."""
    text = expression.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"unclosed action in jsonpath {expression!r}")
    path = text[1:-1].strip()
    if path.startswith("$"):
        path = path[1:]
    value, pos = body, 0
    while pos < len(path):
        m = _JP_STEP.match(path, pos)
        if not m:
            raise ValueError(f"unsupported jsonpath {expression!r}")
        pos = m.end()
        key = m.group(1) or m.group(3)
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise JSONPathMissing(f"{key} is not found")
            value = value[key]
        else:
            index = int(m.group(2))
            if not isinstance(value, list) or index >= len(value):
                raise JSONPathMissing(f"array index out of bounds: index {index}")
            value = value[index]
    return value

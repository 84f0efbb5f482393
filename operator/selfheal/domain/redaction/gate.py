"""Which lines each rule must read: one scan for every rule's trigger, then every rule on its own lines only.

A rule's trigger is a pattern that each of its findings also matches (a key word, a vendor prefix, a
run of mixed token characters...), so a line without it cannot give that rule a finding. Rules read
their trigger lines with one line of context on each side (a value on the next line, the name of
an environment variable on the one before), joined into one text; the spans they find there are the
spans they would have found in the whole text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import re2

from selfheal.domain.redaction.entropy import BLOB_TRIGGER, ENTROPY_TRIGGER, blob_spans, entropy_spans
from selfheal.domain.redaction.keys import (
    BEARER_TRIGGER,
    COMMAND_TRIGGER,
    KEY_TRIGGER,
    MAX_VALUE,
    bearer_spans,
    command_spans,
    key_spans,
)
from selfheal.domain.redaction.lines import Lines, line_of, lines_matching, matches, merge
from selfheal.domain.redaction.normalise import FOLDABLE, NEEDS_FOLDING, fold
from selfheal.domain.redaction.pii import CARD_TRIGGER, EMAIL_TRIGGER, card_spans, email_spans
from selfheal.domain.redaction.shapes import (
    PRIVATE_KEY_TRIGGER,
    URL_PASSWORD_TRIGGER,
    private_key_spans,
    url_password_spans,
)
from selfheal.domain.redaction.spans import Edit, Span
from selfheal.domain.redaction.vendors import re2_options, trigger, vendor_spans

Rule = Callable[[str, str, int], Iterable[Span]]


@dataclass(frozen=True)
class Detector:
    """A rule, its rank among the rules of its phase (lower wins a tie) and its trigger."""

    name: str
    rule: Rule
    rank: int
    trigger: str


# Two phases. First the rules that know what a value is from its context (a key's name, a block,
# a URL's userinfo); then, on what they left, the rules that judge a token by its own shape. Within
# a phase overlapping spans merge, and the first rule's kind names the merged span.
CONTEXT: tuple[Detector, ...] = (
    Detector("private_key", lambda text, low, rank: private_key_spans(text, rank), 1, PRIVATE_KEY_TRIGGER),
    Detector("key", key_spans, 2, KEY_TRIGGER),
    Detector("command", command_spans, 3, COMMAND_TRIGGER),
    Detector("bearer", bearer_spans, 4, BEARER_TRIGGER),
    Detector("url_password", lambda text, low, rank: url_password_spans(text, rank), 5, URL_PASSWORD_TRIGGER),
)
SHAPE: tuple[Detector, ...] = (
    Detector("vendor", lambda text, low, rank: vendor_spans(text, rank), 1, trigger()),
    Detector("blob", lambda text, low, rank: blob_spans(text, rank), 2, BLOB_TRIGGER),
    Detector("entropy", lambda text, low, rank: entropy_spans(text, rank), 3, ENTROPY_TRIGGER),
    Detector("card", lambda text, low, rank: card_spans(text, rank), 4, CARD_TRIGGER),
    Detector("email", lambda text, low, rank: email_spans(text, rank), 5, EMAIL_TRIGGER),
)
PHASES = (CONTEXT, SHAPE)
# A private key block spans many lines: text that holds one is read whole by every rule.
_WHOLE_TEXT = frozenset({"private_key"})
# When more of the text than this is on trigger lines, reading it whole costs no more.
_WHOLE_SHARE = 0.5


@cache
def _compiled(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, re2_options())


def _triggers() -> str:
    return "|".join(f"(?:{d.trigger})" for phase in PHASES for d in phase if d.name not in _WHOLE_TEXT)


@cache
def _any_trigger(also: str | None = None) -> re2._Regexp:
    return _compiled(_triggers() + (f"|(?:{also})" if also else ""))


@cache
def _fold_or_trigger(also: str | None = None) -> re2._Regexp:
    return _compiled(f"{FOLDABLE}|{_triggers()}" + (f"|(?:{also})" if also else ""))


def lower(text: str) -> str:
    """``text`` in lower case, index for index (a few characters change length in lower case)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def whole_text_spans(phase: Sequence[Detector], text: str) -> Iterable[Span]:
    """Every rule of ``phase`` over the whole of ``text``."""
    lowered = lower(text)
    for d in phase:
        yield from d.rule(text, lowered, d.rank)


def candidates(text: str, also: str | None = None) -> tuple[str, Lines | None]:
    """``text`` folded (see `fold`), and the lines of it that hold any rule's trigger (see
    `trigger_lines`) or match ``also``, found in one scan: lines that need folding are folded, and
    count as trigger lines (folding may have made one)."""
    if "PRIVATE KEY" in text or "PuTTY-User-Key" in text:
        return fold(text), None
    found = lines_matching(_fold_or_trigger(also), text, _WHOLE_SHARE)
    if found is None:
        # Mostly lines to fold (a log in another script): fold them, then look for triggers.
        text = fold(text)
        return text, trigger_lines(text, also)
    joined = _Joined(text, found)
    foldable = {joined.index(start) for start, _ in matches(NEEDS_FOLDING, joined.text)}
    if not foldable:
        return text, found
    pieces: list[str] = []
    lines: Lines = []
    pos = length = 0
    for i, (start, end) in enumerate(found):
        folded = fold(text[start:end]) if i in foldable else text[start:end]
        pieces.append(text[pos:start])
        length += start - pos
        lines.append((length, length + len(folded)))
        pieces.append(folded)
        length += len(folded)
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces), lines


def shift(lines: Lines | None, edits: list[Edit], text: str) -> Lines | None:
    """``lines`` of a text after ``edits`` (in its old positions) made it ``text``, with the lines the
    edits are on: a marker may have made a trigger."""
    if lines is None or not edits:
        return lines
    starts = [start for start, _, _ in edits]
    moved: list[int] = [0]
    for start, end, length in edits:
        moved.append(moved[-1] + length - (end - start))

    def where(pos: int) -> int:
        i = bisect_right(starts, pos) - 1
        if i >= 0 and pos < edits[i][1]:
            return edits[i][0] + moved[i]  # inside a replaced region: at its marker
        return pos + moved[i + 1]

    out = [line_of(text, where(start), where(end)) for start, end in lines]
    out += [line_of(text, start + moved[i], start + moved[i] + length) for i, (start, _, length) in enumerate(edits)]
    return merge(out)


def trigger_lines(text: str, also: str | None = None) -> Lines | None:
    """The lines of ``text`` that hold any rule's trigger or match ``also`` (merged ranges), or None when
    every rule must read the whole text: it holds a private key, or triggers are on most of it."""
    if "PRIVATE KEY" in text or "PuTTY-User-Key" in text:
        return None
    return lines_matching(_any_trigger(also), text, _WHOLE_SHARE)


class _Joined:
    """Ranges of a text joined by newlines into one text, with the way back to the text's positions."""

    def __init__(self, text: str, ranges: Lines) -> None:
        self.ranges = ranges
        self.text = "\n".join(text[start:end] for start, end in ranges)
        self.starts: list[int] = []
        pos = 0
        for start, end in ranges:
            self.starts.append(pos)
            pos += end - start + 1

    def index(self, pos: int) -> int:
        return bisect_right(self.starts, pos) - 1

    def position(self, pos: int) -> int:
        """The original text's position of ``pos`` (a joining newline: the end of the range before it)."""
        i = self.index(pos)
        return self.ranges[i][0] + pos - self.starts[i]

    def to_text(self, span: Span) -> Span | None:
        """``span`` in the original text's positions; None if it crosses from one range into another."""
        i = self.index(span.start)
        start, end = self.ranges[i]
        offset = start - self.starts[i]
        if span.end + offset > end:
            return None
        return span._replace(start=span.start + offset, end=span.end + offset)


def _with_context(text: str, lines: Lines, detector: Detector | None = None) -> Lines:
    """Trigger lines with the line before and the line after, past blank lines (a value may follow its key
    over them) and, for keys, up to the end of an element's value (``<password>`` ... ``<``)."""
    out = []
    n = len(text)
    for start, end in lines:
        if start > 0:
            start = text.rfind("\n", 0, start - 1) + 1
        stop = end
        while stop < n:
            nxt = text.find("\n", stop + 1)
            nxt = n if nxt < 0 else nxt
            blank = not text[stop + 1 : nxt].strip()
            stop = nxt
            if not blank:
                break
        if (detector is None or detector.name == "key") and ">" in text[start:end]:
            close = text.find("<", end, end + MAX_VALUE + 1)
            if close > stop:
                _, stop = line_of(text, close, close + 1)
        out.append((start, stop))
    return merge(out)


def gated_spans(phase: Sequence[Detector], text: str, lines: Lines | None) -> list[Span] | None:
    """The spans every rule of ``phase`` finds in ``text``, each rule reading only its trigger lines
    (with context). ``lines`` are the lines any trigger is on (`trigger_lines`); None means the whole
    text. Returns None when a finding crossed the joined lines (never expected): read the text whole."""
    if lines is None:
        return list(whole_text_spans(phase, text))
    if not lines:
        return []
    # A trigger found first may hide another starting inside it: each rule looks for its own on the
    # candidate lines and their context.
    candidates = _Joined(text, _with_context(text, lines))
    spans: list[Span] = []
    for d in phase:
        own = [
            line_of(text, candidates.position(start), candidates.position(end - 1) + 1)
            for start, end in matches(_compiled(d.trigger), candidates.text)
            if end > start
        ]
        if not own:
            continue
        joined = _Joined(text, _with_context(text, merge(own), d))
        for span in d.rule(joined.text, lower(joined.text), d.rank):
            moved = joined.to_text(span)
            if moved is None:
                return None
            spans.append(moved)
    return spans

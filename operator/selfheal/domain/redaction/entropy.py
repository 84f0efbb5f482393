"""Secrets no vendor format names: random-looking tokens and base64 blobs that decode to credentials."""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator

from selfheal.domain.redaction.keys import key_is_secret
from selfheal.domain.redaction.spans import Span

MIN_LENGTH = 20
# A run of token characters; "/" joins base64 but also paths, which are judged segment by segment.
# One character class repeated, so the scan is linear; runs longer than any credential are data.
_RUN = re.compile(r"[A-Za-z0-9+/_\-]{20,}={0,2}")
_BLOB = re.compile(r"[A-Za-z0-9+][A-Za-z0-9+/]{15,}={0,2}")
_CLASS = {**dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 0), **dict.fromkeys("abcdefghijklmnopqrstuvwxyz", 1)}
_CLASS.update(dict.fromkeys("0123456789", 2))
# A run of token characters holding an upper-case letter, a lower-case letter and a digit, in any
# order: every token `looks_random` accepts is one.
_TOKEN_CLASS = r"[A-Za-z0-9+/_\-]"
ENTROPY_TRIGGER = "|".join(
    f"{a}{_TOKEN_CLASS}*{b}{_TOKEN_CLASS}*{c}" for a, b, c in itertools.permutations(("[A-Z]", "[a-z]", "[0-9]"))
)
# A blob of at least 16 base64 characters with an upper-case letter has one with eight base64
# characters on one side of it.
BLOB_TRIGGER = r"[A-Za-z0-9+/]{8}[A-Z]|[A-Z][A-Za-z0-9+/]{8}"
_CREDENTIAL_PAIR = re.compile(r"[^\s:]{1,128}:[^\s]{1,256}")
_WORD = re.compile(r"[a-z]{4,}|[A-Z][a-z]{3,}")


def shannon(text: str) -> float:
    """Bits per character of ``text``'s character distribution."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def looks_random(token: str) -> bool:
    """Whether ``token`` reads as generated key material rather than a word, identifier, hash or id.

    It must mix upper case, lower case and digits (hex digests, UUIDs, pod names and trace ids are
    single-case), change character class often (camelCase identifiers change once a word), carry
    little natural language, and have the entropy of random text of its length.
    """
    body = token.rstrip("=")
    n = len(body)
    if n < MIN_LENGTH:
        return False
    classes = [_CLASS.get(c, 3) for c in body]
    if not (0 in classes and 1 in classes and 2 in classes):
        return False
    changes = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    if changes < 0.45 * n:
        return False
    if sum(len(w) for w in _WORD.findall(body)) > 0.5 * n:
        return False
    return shannon(body) >= min(4.5, 3.6 + (n - MIN_LENGTH) * 0.03)


def entropy_spans(text: str, rank: int) -> Iterator[Span]:
    """Random-looking tokens, whole or, in a path, the random segments of it."""
    for m in _RUN.finditer(text):
        token = m.group(0)
        if len(token) > 4096:
            continue  # no credential is this long; a wall of base64 is data
        if "/" in token and (token.startswith("/") or "//" in token or token.count("/") > 3):
            offset = m.start()
            for part in token.split("/"):
                if looks_random(part):
                    yield Span(offset, offset + len(part), "high_entropy", rank)
                offset += len(part) + 1
        elif looks_random(token):
            yield Span(m.start(), m.end(), "high_entropy", rank)


def _decodes_to_credential(blob: str) -> bool:
    padded = blob + "=" * (-len(blob) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if not decoded.isprintable() or len(decoded) < 5:
        return False
    if _CREDENTIAL_PAIR.fullmatch(decoded) and not decoded.startswith(("http:", "https:")):
        return True
    low = decoded.lower()
    return any(key_is_secret(word) for word in re.findall(r"[A-Za-z_]{3,40}", low) if len(word) <= 40) and (
        "{" in low or "=" in low or ":" in low
    )


def blob_spans(text: str, rank: int) -> Iterator[Span]:
    """Base64 blobs that decode to ``user:password`` or to a document with secret keys (docker auth)."""
    for m in _BLOB.finditer(text):
        blob = m.group(0)
        if (
            blob[0] != "/"
            and (len(blob) % 4 == 0 or blob.endswith("="))
            and not blob.isdigit()
            and blob.lower() != blob
            and _decodes_to_credential(blob)
        ):
            yield Span(m.start(), m.end(), "base64_credential", rank)

"""Secrets named by their key: ``key=value`` in every log shape, headers, cookies, flags and messages."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from functools import lru_cache

from selfheal.domain.redaction.spans import MARKER_PREFIX, Span

# Words that make a key name a secret's when they end it ("DB_PASSWORD", "accessToken").
_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "passwort", "pwd", "pass", "passphrase", "passcode", "pw",
        "secret", "token", "apikey", "accesskey", "secretkey", "privatekey",
        "credential", "credentials", "creds", "auth", "authorization", "sig", "signature",
        "cookie", "sessionid", "sessid", "jsessionid", "phpsessid", "aspsessionid", "sid", "pin", "otp",
        "masterkey", "encryptionkey", "signingkey", "accountkey", "sharedaccesskey", "connectionstring",
    }
)  # fmt: skip
# Single words that end in a secret word ("authtoken", "dbpassword").
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "secretkey")
# Generic last words that name a secret only after a qualifying word ("api_key", "session_id").
_QUALIFIED = {
    "key": frozenset(
        {
            "api", "access", "secret", "private", "encryption", "signing", "master", "account", "client",
            "app", "auth", "license", "storage", "service", "subscription", "admin", "shared", "hmac",
            "webhook", "crypt", "cipher", "aes", "ssh", "gpg", "pgp", "deploy", "bot", "sas", "x",
            "session", "jwt", "consumer", "partner", "merchant", "stripe", "openai", "sendgrid",
        }
    ),
    "id": frozenset({"session", "sess"}),
}  # fmt: skip
_QUALIFIED_TAILS = frozenset({"value", "val", "str", "string", "b64", "base64", "hex", "plain", "enc", "raw", "text"})
# Values that say something about a secret without being one.
_NOT_SECRETS = frozenset(
    {"", "true", "false", "yes", "no", "null", "nil", "none", "empty", "undefined", "set", "unset", "required",
     "redacted", "masked", "hidden", "omitted", "present", "missing", "invalid", "expired", "ok"}
)  # fmt: skip
# Header schemes kept in front of the credential ("Authorization: Bearer [REDACTED:...]").
_SCHEMES = frozenset(
    {"bearer", "basic", "token", "digest", "negotiate", "ntlm", "apikey", "api-key", "sso-key", "key", "otp",
     "aws4-hmac-sha256", "hmac", "signature", "mac", "hawk", "dpop", "pop", "gsso", "splunk", "klaviyo-api-key"}
)  # fmt: skip

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_MAX_KEY = 64
_KEY_BACK = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_KEY_FORWARD = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_STEMS = re.compile(r"pass|pwd|pw|secret|token|key|auth|cred|sig|sess|cookie|sid|pin|otp|connectionstring")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_SEPARATOR = re.compile(r"(?:\\*[\"'`]|\])?[ \t]{0,3}(?P<sep>=>|:=|::|=|:)[ \t]{0,3}")
# An environment variable in Kubernetes JSON or YAML: the key is a name, the secret in "value".
_ENV_VALUE = re.compile(r"\\*[\"']?[ \t]*,?[ \t]*(?:\r?\n[ \t\-]{0,40})?\\*[\"']?value\\*[\"']?[ \t]*[:=][ \t]*")
# "wrong password 'x'", "password is 'x'": a quoted value a few plain words after the key.
_SAID = re.compile(r"(?:[ \t]+(?:is|was|of|for|provided|given|supplied|used|value|set|to))?[ \t]{1,3}(?=[\"'`])")
_NESTED_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]{0,40})=")
_AFTER_PADDING = frozenset(" \t\r\n\"'`,;&<>(){}[]\\|=")
_PLAIN_VALUE = re.compile(r"[^ \t\r\n\"'`,;&<>(){}\[\]\\|]{1,2048}")
_WORDS_VALUE = re.compile(r"[^\n\"'`\]\\]{1,2048}")
MAX_VALUE = 2048


def _words_of(words: frozenset[str]) -> str:
    return "|".join(sorted(words, key=lambda w: (-len(w), w)))


# What `key_spans` needs before it can find anything: a secret word ending a word of a key
# ("DB_PASSWORD", "accessToken", "passwordValue"), or a generic last word after its qualifier
# ("api_key", "sessionId"). Words end before a character that is not a lower-case letter.
KEY_TRIGGER = "|".join(
    [f"(?i:{_words_of(_SECRET_WORDS | frozenset(_SECRET_SUFFIXES))})(?:[^a-z]|\\z)"]
    + [f"(?i:{_words_of(before)})[0-9_.\\-]*(?i:{word})(?:[^a-z]|\\z)" for word, before in _QUALIFIED.items()]
)


@lru_cache(maxsize=4096)
def key_is_secret(key: str) -> bool:
    """Whether a key name ("DB_PASSWORD", "x-api-key", "accessToken", "AccountKey") names a secret."""
    words = [w.lower() for w in _WORDS.findall(key)]
    while words and words[-1] in _QUALIFIED_TAILS:
        if len(words) > 1 and _word_is_secret(words[-2], words[-3] if len(words) > 2 else ""):
            return True
        words.pop()
    if not words:
        return False
    return _word_is_secret(words[-1], words[-2] if len(words) > 1 else "")


def _word_is_secret(word: str, before: str) -> bool:
    if word in _SECRET_WORDS or word.endswith(_SECRET_SUFFIXES):
        return True
    qualifiers = _QUALIFIED.get(word)
    return qualifiers is not None and before in qualifiers


@lru_cache(maxsize=4096)
def _kind(key: str) -> str:
    low = key.lower().replace("-", "_")
    if "authorization" in low:
        return "authorization"
    if "cookie" in low:
        return "cookie"
    for kind, needles in (
        ("password", ("passw", "pwd", "pass", "pw")),
        ("api_key", ("apikey", "api_key")),
        ("aws_secret_key", ("access_key", "accesskey")),
        ("secret", ("secret",)),
        ("token", ("token",)),
        ("session", ("sess", "sid")),
    ):
        if any(n in low for n in needles):
            return kind
    return "secret"


def _quoted_end(text: str, start: int, quote: str, escapes: int) -> int:
    """End of a value opened by ``escapes`` backslashes and ``quote``: at the same quote with as many."""
    limit = min(len(text), start + MAX_VALUE)
    i = start
    while True:
        j = text.find(quote, i, limit)
        nl = text.find("\n", i, limit)
        if j < 0 or (0 <= nl < j):
            return nl if nl >= 0 else limit
        b = j
        while b > start and text[b - 1] == "\\":
            b -= 1
        if j - b == escapes or (escapes == 0 and (j - b) % 2 == 0):
            return b
        i = j + 1


def value_span(text: str, pos: int, *, words: bool = False) -> tuple[int, int]:
    """The value starting at ``pos``: quoted (at any level of escaping) or up to a delimiter.
    ``words``: the value runs to the end of the line or of its string (a header's credential)."""
    n = len(text)
    i = pos
    while i < n and text[i] == "\\" and i - pos < 16:
        i += 1
    if i < n and text[i] in "\"'`" and not (words and i == pos):
        start = i + 1
        return start, _quoted_end(text, start, text[i], i - pos)
    if i != pos:
        return pos, pos  # backslashes before something else: not a value we understand
    m = (_WORDS_VALUE if words else _PLAIN_VALUE).match(text, pos)
    end = m.end() if m is not None else pos
    if words:
        while end > pos and text[end - 1] in " \t\r,;":
            end -= 1
    return pos, end


def _nested_key(text: str, start: int, end: int) -> bool:
    """Whether the value at ``start`` is itself ``key=...`` (and not base64 ending in padding)."""
    nested = _NESTED_KEY.match(text, start, end)
    if nested is None:
        return False
    after = text[nested.end()] if nested.end() < end else ""
    return (after != "" and after not in _AFTER_PADDING) or key_is_secret(nested.group(1))


def _secret_value(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    if value.startswith(MARKER_PREFIX) or value.strip("*x.-_ ").lower() == "":
        return False
    low = value.lower()
    if _nested_key(text, start, end):
        return False  # "auth: method=oidc": the value is another key, not a secret
    return low not in _NOT_SECRETS and not low.startswith(("${", "$(", "{{", "<redacted", "<hidden"))


def _header_value(text: str, pos: int, key: str) -> Iterator[tuple[int, int, str]]:
    """An authorization header keeps its scheme; a cookie header loses every value (Set-Cookie: the first)."""
    low = key.lower()
    while pos < len(text) and text[pos] in "[\"'":
        pos += 1
    start, end = value_span(text, pos, words=True)
    if "cookie" in low:
        only_first = low.startswith("set")
        i = start
        while i < end:
            semi = text.find(";", i, end)
            seg_end = end if semi < 0 else semi
            eq = text.find("=", i, seg_end)
            if eq >= 0 and seg_end > eq + 1:
                yield eq + 1, seg_end, "cookie"
            if only_first:
                break
            i = seg_end + 1
        return
    kind = "authorization"
    space = text.find(" ", start, end)
    if space > start and text[start:space].lower() in _SCHEMES:
        scheme = text[start:space].lower()
        kind = {"bearer": "bearer", "basic": "basic_auth"}.get(scheme, kind)
        start = space + 1
        while start < end and text[start] == " ":
            start += 1
    yield start, end, kind


def key_spans(text: str, lowered: str, rank: int) -> Iterator[Span]:
    """Values of keys that name secrets, wherever a stem of such a key occurs in ``text``."""
    done = 0
    for stem in _STEMS.finditer(lowered):
        if stem.start() < done:
            continue
        back = _KEY_BACK.search(text, max(0, stem.start() - 64), stem.start())
        ks = back.start() if back is not None else stem.start()
        forward = _KEY_FORWARD.match(text, stem.end())
        ke = forward.end() if forward is not None else stem.end()
        done = ke
        if ke - stem.end() == _MAX_KEY and ke < len(text) and text[ke] in _KEY_CHARS:
            continue  # a run of key characters longer than any key name: an identifier or data
        key = text[ks:ke].strip(".-")
        if not key or not key_is_secret(key):
            continue
        for start, end, kind in _values_after(text, ks, ke, key):
            if end > start and _secret_value(text, start, end):
                yield Span(start, end, kind, rank)
                done = max(done, end)


def _values_after(text: str, ks: int, ke: int, key: str) -> Iterator[tuple[int, int, str]]:
    kind = _kind(key)
    env = _ENV_VALUE.match(text, ke)
    if env is not None and _names_a_variable(text, ks):
        yield (*value_span(text, env.end()), kind)
        return
    sep = _SEPARATOR.match(text, ke)
    if sep is not None and not (sep.group("sep") == ":" and text.startswith("//", sep.end())):
        if key.lower().endswith(("authorization", "cookie")):
            yield from _header_value(text, sep.end(), key)
        elif not _nested_key(text, sep.end(), len(text)):  # "password=password=": the next key is its own
            yield (*value_span(text, sep.end()), kind)
        return
    if ke < len(text) and text[ke] == ">" and ks > 0 and text[ks - 1] == "<":
        end = text.find("<", ke + 1, ke + 1 + MAX_VALUE)
        yield ke + 1, end if end >= 0 else ke + 1, kind
        return
    if text.startswith("-", ks) and ke < len(text) and text[ke] in " \t":
        pos = ke
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] != "-":
            yield (*value_span(text, pos), kind)
        return
    said = _SAID.match(text, ke)
    if said is not None:
        yield (*value_span(text, said.end()), kind)


def _names_a_variable(text: str, ks: int) -> bool:
    """Whether the key at ``ks`` is the value of a ``name`` field ({"name":"DB_PASSWORD", ...})."""
    before = text[max(0, ks - 24) : ks].lower()
    return bool(re.search(r"name\\*[\"']?[ \t]*[:=][ \t]*\\*[\"']?$", before))


# Commands that take a password by a short flag: the flags, and whether the value follows a space.
_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "docker": (("-p",), "login"), "podman": (("-p",), "login"), "nerdctl": (("-p",), "login"),
    "buildah": (("-p",), "login"), "skopeo": (("-p",), "login"), "helm": (("-p",), "login"),
    "oras": (("-p",), "login"), "crane": (("-p",), "login"), "regctl": (("-p",), "login"),
    "mysql": (("-p",), ""), "mysqldump": (("-p",), ""), "mysqladmin": (("-p",), ""), "mariadb": (("-p",), ""),
    "redis-cli": (("-a",), ""), "sshpass": (("-p",), ""), "mongo": (("-p",), ""), "mongosh": (("-p",), ""),
    "mongodump": (("-p",), ""), "curl": (("-u", "--user", "--proxy-user"), ""), "wget": (("--password",), ""),
}  # fmt: skip
# A command line `command_spans` reads: one of the commands, then a password flag on the same line.
COMMAND_TRIGGER = (
    "(?i:" + "|".join(re.escape(command) for command in _COMMANDS) + ")[^\\n]*[ \\t]-(?:[pau]|-user|-proxy-user)"
)
_ATTACHED_ONLY = frozenset({"mysql", "mysqldump", "mysqladmin", "mariadb"})
_FLAG = re.compile(r"[ \t](?P<flag>-[pau]|--user|--proxy-user)(?:(?P<eq>[ \t]+|=)|(?=[^ \t\n-]))")


def command_spans(text: str, lowered: str, rank: int) -> Iterator[Span]:
    """Passwords given to a command line by short flags: ``docker login -p X``, ``mysql -pX``, ``curl -u u:X``."""
    for command, entry in _COMMANDS.items():
        scanned = 0
        for begin in _occurrences(lowered, command):
            if begin < scanned:
                continue  # this stretch of the line was read for an earlier occurrence
            scanned = yield from _flag_values(text, lowered, begin, command, entry, rank)


def _occurrences(lowered: str, word: str) -> Iterator[int]:
    """End of each place where ``word`` stands as a whole word."""
    i = lowered.find(word)
    while i >= 0:
        end = i + len(word)
        before = lowered[i - 1] if i else " "
        after = lowered[end] if end < len(lowered) else " "
        if not (before.isalnum() or before in "_.-") and not (after.isalnum() or after in "_-"):
            yield end
        i = lowered.find(word, end)


def _flag_values(
    text: str, lowered: str, begin: int, command: str, entry: tuple[tuple[str, ...], str], rank: int
) -> Generator[Span, None, int]:
    """The password flags of one command line; returns where the reading stopped."""
    flags, sub = entry
    line_end = lowered.find("\n", begin)
    line_end = min(len(text) if line_end < 0 else line_end, begin + 1024)
    if sub:
        at = lowered.find(sub, begin, min(line_end, begin + 160))
        if at < 0:
            return begin
        begin = at + len(sub)
    for flag in _FLAG.finditer(text, begin, line_end):
        name = flag.group("flag")
        if name not in flags:
            continue
        if command in _ATTACHED_ONLY and flag.group("eq") not in (None, "="):
            continue  # "mysql -p dbname" asks for the password; the next word is a database
        start, end = value_span(text, flag.end())
        if name in ("-u", "--user", "--proxy-user"):
            colon = text.find(":", start, end)
            if colon < 0:
                continue
            start = colon + 1
        if end > start and _secret_value(text, start, end):
            yield Span(start, end, "password", rank)
    return line_end


_BEARER = re.compile(r"bearer[ \t]{1,4}")
BEARER_TRIGGER = r"(?i:bearer)[ \t]"


def bearer_spans(text: str, lowered: str, rank: int) -> Iterator[Span]:
    """``Bearer <token>`` wherever it is written, header or not."""
    for m in _BEARER.finditer(lowered):
        if m.start() > 0 and lowered[m.start() - 1].isalnum():
            continue
        start, end = value_span(text, m.end())
        if end > start and _looks_like_token(text[start:end]) and _secret_value(text, start, end):
            yield Span(start, end, "bearer", rank)


def _looks_like_token(value: str) -> bool:
    """Tell an opaque credential from an ordinary word following "Bearer" ("Bearer authentication")."""
    if len(value) < 8:
        return False
    if len(value) >= 20:
        return True
    has_digit = any(c.isdigit() for c in value)
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    has_symbol = any(c in "-._~+/=" for c in value)
    return has_digit or has_symbol or (has_upper and has_lower and not value[:1].isupper())

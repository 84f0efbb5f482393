"""A planted-secret corpus: every credential format the detectors know, written into every log context.

Vendor formats are generated from the detectors' own patterns (each alternative of a pattern is
its own format, with random characters where the pattern has classes), so a format added to the
detector set is planted here too. To these come the formats no vendor pattern names (bare AWS
secret keys, random base64 tokens, base64 credential blobs, card numbers, private key blocks) and
plain passwords that only a key name betrays.
"""

from __future__ import annotations

import base64
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from selfheal.domain.redaction.vendors import formats

_SAFE = string.ascii_letters + string.digits
_CATEGORY = {
    sre_constants.CATEGORY_DIGIT: string.digits,
    sre_constants.CATEGORY_WORD: _SAFE,
    sre_constants.CATEGORY_SPACE: " ",
    sre_constants.CATEGORY_NOT_DIGIT: string.ascii_letters,
    sre_constants.CATEGORY_NOT_SPACE: _SAFE,
    sre_constants.CATEGORY_NOT_WORD: "-",
}


@dataclass(frozen=True)
class Planted:
    """One planted secret: its format's name, the text that carries it, and the secret itself."""

    fmt: str
    text: str
    secret: str


def _class_chars(items: list[tuple[object, object]], rng: random.Random) -> str:
    chars: list[str] = []
    negate = False
    for op, av in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            chars.append(chr(av))  # type: ignore[arg-type]
        elif op is sre_constants.RANGE:
            lo, hi = av  # type: ignore[misc]
            chars.extend(chr(c) for c in range(lo, hi + 1))
        elif op is sre_constants.CATEGORY:
            chars.extend(_CATEGORY.get(av, _SAFE))
    if negate:
        return "".join(c for c in _SAFE if c not in chars) or "x"
    # Prefer letters and digits: they are what credentials are made of, and keep contexts intact.
    plain = [c for c in chars if c in _SAFE]
    return "".join(plain or chars)


def _render(parsed: object, rng: random.Random, branch: list[int]) -> str:
    out: list[str] = []
    for op, av in parsed:  # type: ignore[attr-defined]
        if op is sre_constants.LITERAL:
            out.append(chr(av))
        elif op is sre_constants.NOT_LITERAL:
            out.append("x" if chr(av) != "x" else "y")
        elif op is sre_constants.ANY:
            out.append(rng.choice(string.ascii_lowercase))
        elif op is sre_constants.IN:
            out.append(rng.choice(_class_chars(av, rng)))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
            low, high, sub = av
            if high == sre_constants.MAXREPEAT:  # unbounded: a realistic length, at least eight
                low, high = max(low, 8), max(low, 8) + 12
            count = low if op is sre_constants.MIN_REPEAT else rng.randint(low, min(high, low + 12))
            count = max(count, 1) if low == 0 and high > 0 and op is not sre_constants.MIN_REPEAT else count
            out.extend(_render(sub, rng, branch) for _ in range(count))
        elif op is sre_constants.SUBPATTERN:
            out.append(_render(av[-1], rng, branch))
        elif op is sre_constants.BRANCH:
            options = av[1]
            pick = branch.pop(0) if branch else 0
            out.append(_render(options[pick % len(options)], rng, branch))
        # AT, ASSERT, ASSERT_NOT and the like match no characters.
    return "".join(out)


def _first_branch_width(parsed: object) -> int:
    for op, av in parsed:  # type: ignore[attr-defined]
        if op is sre_constants.BRANCH:
            return len(av[1])
        if op is sre_constants.SUBPATTERN:
            width = _first_branch_width(av[-1])
            if width:
                return width
    return 0


# A format written as ``Name=value`` (Azure's): the name stays readable, the value is the secret.
_KEY_PREFIX = re.compile(r"[A-Za-z]{4,30}=(.+)")


def vendor_samples(seed: int = 7) -> Iterator[tuple[str, str, str]]:
    """``(format name, text, secret)`` for every alternative of every vendor pattern the detectors know.

    The text is what the pattern matches (a keyword and its value, a URL with userinfo); the
    secret is the part of it that must not leak."""
    rng = random.Random(seed)
    for number, fmt in enumerate(formats()):
        pattern = re.sub(r"^\(\?i\)", "", fmt.pattern)
        parsed = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
        for branch in range(max(1, _first_branch_width(parsed))):
            sample = _render(parsed, rng, [branch])
            m = compiled.search(sample)
            assert m is not None, f"{fmt.kind}: generated {sample!r} does not match {pattern!r}"
            carrier = sample.strip(" \t\"'")
            value = m.group(1) if compiled.groups and m.start(1) > m.start() and m.group(1) else carrier
            value = value.strip(" \t\"'=:")
            if len(value) < 8 and fmt.kind != "url_password":
                value = carrier  # a short group is a part of the format (a version tag), not its secret
            named = _KEY_PREFIX.match(value)
            yield f"{fmt.kind}#{number}.{branch}", carrier, named.group(1) if named else value


def _random(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + _random(rng, string.digits, length - len(prefix) - 1)
    for check in string.digits:
        candidate = digits + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def shape_samples(seed: int = 11) -> Iterator[tuple[str, str]]:
    """Formats no vendor pattern names: judged by entropy, by decoding, by Luhn."""
    rng = random.Random(seed)
    b64 = string.ascii_letters + string.digits + "+/"
    yield "aws_secret_key:bare", _random(rng, b64, 40)
    yield "random:base64-32", _random(rng, b64, 32)
    yield "random:base64-64", _random(rng, b64, 64)
    yield "random:base62-24", _random(rng, _SAFE, 24)
    yield "random:base62-48", _random(rng, _SAFE, 48)
    yield "random:urlsafe-43", _random(rng, _SAFE + "-_", 43)
    yield "random:django-secret", "django-insecure-" + _random(rng, _SAFE, 40)
    yield "random:rails-master", _random(rng, _SAFE, 32) + "Q9"
    for user, password in (("ci-bot", "Pa55-w0rd!"), ("admin", "hunter2x"), ("svc", "correct-horse")):
        yield f"base64_credential:{user}", base64.b64encode(f"{user}:{password}".encode()).decode()
    docker = '{"auths":{"registry.example.com":{"auth":"' + base64.b64encode(b"bot:tok3n-value").decode() + '"}}}'
    yield "base64_credential:dockerconfig", base64.b64encode(docker.encode()).decode()
    for name, prefix, length in (
        ("visa", "4", 16),
        ("mastercard", "53", 16),
        ("mastercard-2", "2221", 16),
        ("amex", "37", 15),
        ("discover", "6011", 16),
        ("jcb", "35", 16),
        ("unionpay", "62", 19),
    ):
        number = _luhn_complete(prefix, length, rng)
        yield f"card_number:{name}", number
        if length == 16:
            yield f"card_number:{name}-spaced", " ".join(number[i : i + 4] for i in range(0, 16, 4))
            yield f"card_number:{name}-dashed", "-".join(number[i : i + 4] for i in range(0, 16, 4))


def private_key_samples(seed: int = 13) -> Iterator[tuple[str, str]]:
    """Private key blocks of every armour the detectors know; the secret is a body line."""
    rng = random.Random(seed)
    b64 = string.ascii_letters + string.digits + "+/"
    for label in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY",
                  "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK", "SSH2 ENCRYPTED PRIVATE KEY"):  # fmt: skip
        body = [_random(rng, b64, 64) for _ in range(3)]
        yield f"private_key:{label}", "\n".join([f"-----BEGIN {label}-----", *body, f"-----END {label}-----"])


# Passwords nothing but their key name betrays (no vendor prefix, often low entropy).
PLAIN_PASSWORDS = (
    "hunter2",
    "P@ssw0rd!2024",
    "s3cr3t-v@lue_42",
    "Tr0ub4dor&3",
    "correct-horse-battery",
    "pässwörd9",
    "12345678",
    "$ecret#1x",
    "x%2Fy%3Dz",
    "letmein.now",
)

# Contexts: how a secret appears in a log line. A context takes the secret and returns the text.
Context = Callable[[str], str]


def _json_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


CONTEXTS: dict[str, Context] = {
    "plain": lambda s: f"2025-10-09T14:00:00Z ERROR upstream rejected credential {s} (401)",
    "json": lambda s: '{"level":"error","msg":"upstream rejected","credential":"' + _json_escape(s) + '"}',
    "escaped-json": lambda s: '{"log":"' + _json_escape('{"level":"error","apiKey":"' + _json_escape(s) + '"}') + '"}',
    "double-escaped-json": lambda s: (
        '{"log":"' + _json_escape('{"inner":"' + _json_escape('{"password":"' + _json_escape(s) + '"}') + '"}') + '"}'
    ),
    "logfmt": lambda s: f'time=2025-10-09T14:00:00Z level=error msg="login failed" password={s} user=bob',
    "logfmt-quoted": lambda s: f'level=error msg="login failed" secret="{s}" user=bob',
    "ansi-key": lambda s: f"\x1b[31mERRO\x1b[0m[0042] login failed \x1b[31mpassword\x1b[0m={s} \x1b[31muser\x1b[0m=bob",
    "ansi-json-escaped": lambda s: '{"log":"\\u001b[31mtoken\\u001b[0m=' + _json_escape(s) + ' failed"}',
    "go-panic": lambda s: (
        f"panic: stripe: invalid API key {s}\n\ngoroutine 1 [running]:\nmain.charge(...)\n\t/app/main.go:42 +0x1d"
    ),
    "java-trace": lambda s: (
        f"java.lang.IllegalStateException: cannot decrypt with key {s}\n"
        "\tat com.example.Vault.open(Vault.java:88)\n\tat com.example.Main.main(Main.java:12)"
    ),
    "python-trace": lambda s: (
        'Traceback (most recent call last):\n  File "/app/main.py", line 9, in <module>\n'
        f"    connect(password='{s}')\nValueError: bad credentials"
    ),
    "url-userinfo": lambda s: f"dial tcp: lookup failed for https://deploy:{s}@git.example.com/org/repo.git",
    "url-query": lambda s: f"GET /oauth/callback?code=ok&access_token={s}&state=xyz HTTP/1.1 500",
    "header-token": lambda s: f"> Authorization: token {s}",
    "header-bearer": lambda s: f"request headers: authorization: Bearer {s}",
    "header-basic": lambda s: f"Authorization: Basic {s}",
    "go-map-header": lambda s: f"headers=map[Accept:[*/*] Authorization:[Bearer {s}]]",
    "python-dict-header": lambda s: "headers={'Accept': '*/*', 'X-Api-Key': '" + s + "'}",
    "cookie": lambda s: f"Cookie: theme=dark; session={s}; lang=en",
    "set-cookie": lambda s: f"< Set-Cookie: JSESSIONID={s}; Path=/; HttpOnly; Secure",
    "cli-long-flag": lambda s: f"exec: /usr/bin/app --user admin --password {s} --verbose",
    "cli-docker-login": lambda s: f"+ docker login -u ci -p {s} registry.example.com",
    "cli-mysql": lambda s: f"+ mysql -uroot -p{s} -h db orders",
    "cli-curl": lambda s: f"+ curl -sf -u admin:{s} https://api.example.com/health",
    "env-dump": lambda s: f"DB_PASSWORD={s}",
    "env-export": lambda s: f"export GITHUB_TOKEN={s}",
    "yaml": lambda s: f"  password: {s}",
    "properties": lambda s: f"spring.datasource.password={s}",
    "k8s-env-json": lambda s: '{"env":[{"name":"DB_PASSWORD","value":"' + _json_escape(s) + '"}]}',
    "k8s-env-yaml": lambda s: f"- name: ENCRYPTION_KEY\n  value: {s}",
    "ruby-hash": lambda s: '{"password" => "' + s + '", "user" => "bob"}',
    "php-array": lambda s: "array('passphrase' => '" + s + "')",
    "xml": lambda s: f"<credentials><password>{s}</password></credentials>",
    "message-wrong-password": lambda s: f"authentication failed: wrong password '{s}' for user bob",
    "zero-width-split": lambda s: "leaked " + (s[: len(s) // 2] + "\u200b" + s[len(s) // 2 :]),
    "fullwidth": lambda s: "leaked " + "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),
}

# Contexts a plain password is found in only through its key name (all but plain prose and the
# splitting contexts, where nothing says the word is a password).
KEY_CONTEXTS = tuple(
    name
    for name in CONTEXTS
    if name not in ("plain", "json", "go-panic", "java-trace", "zero-width-split", "fullwidth")
)


def formats_list() -> list[tuple[str, str, str]]:
    """Every planted format, ``(name, text, secret)``: vendor, shape and private key formats."""
    others = [*shape_samples(), *private_key_samples()]
    return [*vendor_samples(), *((name, secret, secret) for name, secret in others)]


def corpus() -> Iterator[Planted]:
    """Every format in every context it can occur in, and every plain password in the keyed contexts."""
    for name, carrier, secret in formats_list():
        multi_line = "\n" in carrier
        for ctx_name, ctx in CONTEXTS.items():
            if multi_line and ctx_name not in ("plain", "yaml", "python-trace"):
                continue
            if (" " in carrier or "'" in carrier or '"' in carrier) and ctx_name not in (
                "json",
                "logfmt-quoted",
                "ruby-hash",
                "php-array",
                "xml",
                "message-wrong-password",
                "k8s-env-json",
                "escaped-json",
                "double-escaped-json",
                "python-dict-header",
            ):
                continue  # fmt: skip
            yield Planted(f"{name}@{ctx_name}", ctx(carrier), secret)
    for password in PLAIN_PASSWORDS:
        for ctx_name in KEY_CONTEXTS:
            yield Planted(f"plain-password:{password}@{ctx_name}", CONTEXTS[ctx_name](password), password)


def leaked(secret: str, output: str, window: int = 12) -> str | None:
    """A piece of ``secret`` found in ``output``: the whole, or (for long secrets) any ``window`` of it."""
    pieces = [secret]
    core = secret.replace(" ", "").replace("-", "")
    if len(secret) > window:
        pieces += [secret[i : i + window] for i in range(len(secret) - window + 1)]
    if core != secret and len(core) >= 8:
        pieces.append(core)
    for piece in pieces:
        if piece in output:
            return piece
    return None

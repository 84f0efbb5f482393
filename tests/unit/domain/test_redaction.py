"""Redaction: every built-in kind, user patterns, idempotence, and linear time on hostile input (CPU time of
this process, so a busy machine does not fail the bounds)."""

from __future__ import annotations

import time

import pytest

from selfheal.domain.redaction import Redactor, redact_with_counts

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun
VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK
-----END RSA PRIVATE KEY-----"""

# (kind, text containing the secret, the secret itself)
CASES = [
    ("bearer", "GET /api Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456ghiJKL789"),
    ("jwt", f"session={JWT} user=1", JWT),
    ("aws_access_key", "using key AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_access_key", "temporary ASIAY34FZKBOKMUTVV7A expires soon", "ASIAY34FZKBOKMUTVV7A"),
    ("aws_secret_key", f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET),
    ("aws_secret_key", f'"AWS_SECRET_ACCESS_KEY": "{AWS_SECRET}"', AWS_SECRET),
    (
        "gcp_api_key",
        "maps key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q in url",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    ),
    (
        "github_token",
        "push with ghp_1234567890abcdefghijABCDEFGHIJ123456 ok",
        "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    ),
    ("github_token", "oauth gho_16C7e42F292c6912E7710c838347Ae178B4a done", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("github_token", "app ghs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 x", "ghs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("github_token", "user ghu_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 x", "ghu_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("github_token", "refresh ghr_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 x", "ghr_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    (
        "github_token",
        "fine-grained github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV used",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
    ),
    (
        "slack_token",
        "posting with xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "slack_webhook",
        "hook https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX failed",
        "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    ),
    (
        "private_key",
        f"loaded key:\n{PRIVATE_KEY}\nserver starting",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    ),
    ("url_password", "connecting to postgres://app:s3cr3tP4ss@db.internal:5432/orders", "s3cr3tP4ss"),
    ("password", "login failed password=hunter2 for admin", "hunter2"),
    ("password", "db passwd=Tr0ub4dor&3 ok", "Tr0ub4dor"),
    ("password", '{"user": "bob", "password": "correct horse battery"}', "correct horse battery"),
    ("secret", "client_secret=9f8e7d6c5b4a3210 granted", "9f8e7d6c5b4a3210"),
    ("token", "refresh token=tok_live_51HxYz end", "tok_live_51HxYz"),
    ("api_key", "calling api_key=sk-proj-abcdef123456 now", "sk-proj-abcdef123456"),
    ("email", "password reset sent to jane.doe+test@example.co.uk today", "jane.doe+test@example.co.uk"),
]


@pytest.mark.parametrize(("kind", "text", "secret"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_builtin_kind_is_redacted_and_counted(kind: str, text: str, secret: str) -> None:
    r = Redactor()
    out = r.redact(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out
    assert r.counts.get(kind, 0) >= 1


@pytest.mark.parametrize(("kind", "text", "secret"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_redaction_is_idempotent(kind: str, text: str, secret: str) -> None:
    r = Redactor()
    once = r.redact(text)
    again, counts = r.redact_with_counts(once)
    assert again == once
    assert counts == {}


def test_url_password_keeps_user_and_host() -> None:
    out = Redactor().redact("dial https://deploy:pa55w0rd@git.example.com/repo.git")
    assert out == "dial https://deploy:[REDACTED:url_password]@git.example.com/repo.git"


def test_private_key_block_is_replaced_whole_and_truncated_block_to_the_end() -> None:
    text = f"before\n{PRIVATE_KEY}\nafter"
    assert Redactor().redact(text) == "before\n[REDACTED:private_key]\nafter"
    cut = "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
    out = Redactor().redact(cut)
    assert "b3BlbnNzaC1rZXkt" not in out
    assert out.startswith("key:\n[REDACTED:private_key]")


def test_json_password_keeps_structure() -> None:
    out = Redactor().redact('{"user":"bob","password":"p@ss w0rd","ok":true}')
    assert out == '{"user":"bob","password":"[REDACTED:password]","ok":true}'


def test_ordinary_log_lines_are_left_alone() -> None:
    lines = [
        "2025/10/09 14:00:00 200 - blue",
        "2025/10/09 14:00:02 500 - red (2.000000s)",
        "2025/10/09 14:00:01 http: panic serving 10.0.0.5:41234: runtime error: index out of range [0] with length 0",
        'level=info msg="Bearer authentication enabled" path=/color',
        "GET https://example.com/api/v1/items?page=2 took 12ms",
        "goroutine 35 [running]:",
    ]
    r = Redactor()
    for line in lines:
        assert r.redact(line) == line
    assert r.counts == {}


def test_counts_accumulate_across_calls_and_per_call_counts_are_separate() -> None:
    r = Redactor()
    r.redact("password=a1 and jane@example.com")
    _, counts = r.redact_with_counts("token=xyz987 and bob@example.org and amy@example.net")
    assert counts == {"token": 1, "email": 2}
    assert r.counts == {"password": 1, "token": 1, "email": 3}


def test_module_level_redact_with_counts() -> None:
    out, counts = redact_with_counts("key AKIAIOSFODNN7EXAMPLE mail a@b.io")
    assert "AKIAIOSFODNN7EXAMPLE" not in out and "a@b.io" not in out
    assert counts == {"aws_access_key": 1, "email": 1}
    # No state leaks between calls.
    assert redact_with_counts("nothing here") == ("nothing here", {})


def test_user_patterns_use_their_name_as_kind_and_run_with_builtins() -> None:
    r = Redactor(patterns=[("customer-id", r"CUST-\d{6}"), ("internal host", r"\b[a-z]+\.corp\.internal\b")])
    out = r.redact("order for CUST-123456 from api.corp.internal password=x9")
    assert "CUST-123456" not in out and "api.corp.internal" not in out and "x9" not in out
    assert "[REDACTED:customer-id]" in out
    assert r.counts["customer-id"] == 1 and r.counts["internal_host"] == 1 and r.counts["password"] == 1
    assert r.redact(out) == out


def test_user_patterns_only() -> None:
    r = Redactor(patterns=[("pin", r"PIN \d{4}")], builtins=False)
    assert r.redact("PIN 1234 password=secret1") == "[REDACTED:pin] password=secret1"


def test_invalid_user_pattern_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="broken-one"):
        Redactor(patterns=[("ok", r"\d+"), ("broken-one", r"(unclosed")])


PATHOLOGICAL = {
    "letters": "a" * 100_000,
    "at-signs": "a@" * 50_000,
    "dots-at": "a." * 50_000 + "@",
    "email-domain": "x@" + "a." * 50_000,
    "jwt-prefix": "eyJ" * 33_000,
    "jwt-dots": "eyJ" + "a" * 50_000 + ".eyJ" + "b" * 49_000,
    "scheme": "http://" + "a:" * 46_000,
    "colons-at": "s://" + ":" * 99_000,
    "kv": "password=" * 11_000,
    "kv-quote": 'password="' + "a" * 99_000,
    "bearer": "Bearer " * 14_000,
    "begin": "-----BEGIN RSA PRIVATE KEY-----" * 3_200,
    "akia": "AKIA" * 25_000,
    "aws-secret": "aws_secret_access_key=" * 4_500,
    "github": "ghp_" * 25_000,
    "slack": "xoxb-" * 20_000,
    "digits": "1" * 100_000,
    "base64": "A1b2+/" * 16_000,
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_100k_char_lines_finish_fast(name: str) -> None:
    r = Redactor()
    start = time.process_time()
    out = r.redact(PATHOLOGICAL[name])
    elapsed = time.process_time() - start
    assert elapsed < 1.0, f"{name}: {elapsed:.2f}s"
    assert r.redact(out) == out


def test_100k_lines_with_scattered_secrets_redact_in_linear_time() -> None:
    lines = []
    for i in range(100_000):
        if i % 1000 == 0:
            lines.append(f"2025/10/09 14:00:00 login user=u{i}@example.com password=pw{i} token=t{i}x")
        else:
            lines.append(
                f'2025/10/09 14:00:00 level=info msg="request served" path=/api/v1/items/{i} status=200 id={i:08x}'
            )
    text = "\n".join(lines)
    r = Redactor()
    start = time.process_time()
    out = r.redact(text)
    elapsed = time.process_time() - start
    assert r.counts == {"email": 100, "password": 100, "token": 100}
    assert "pw5000" not in out
    assert out.count("\n") == 99_999
    assert elapsed < 5.0


# --- gaps found in review ----------------------------------------------------------------------------

GAPS = [
    (
        '{"msg":"login failed with password=\\"hunter2secret\\""}',
        '{"msg":"login failed with password=\\"[REDACTED:password]\\""}',
    ),
    (
        '{"level":"info","body":"{\\"user\\":\\"bob\\",\\"password\\":\\"hunter2secret\\"}"}',
        '{"level":"info","body":"{\\"user\\":\\"bob\\",\\"password\\":\\"[REDACTED:password]\\"}"}',
    ),
    (
        "connecting to postgres://admin:Ab3/xYz+9Q@db:5432/app",
        "connecting to postgres://admin:[REDACTED:url_password]@db:5432/app",
    ),
    ("redis://default:p@ssw0rd@cache:6379", "redis://default:[REDACTED:url_password]@cache:6379"),
    ("ｐａｓｓｗｏｒｄ＝＂hunter2secret＂", 'password="[REDACTED:password]"'),
    (
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
        "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
        "-----END PRIVATE KEY-----\nserver started",
        "[REDACTED:private_key]\nserver started",
    ),
    (
        "loaded key\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nKj8=\n-----END RSA PRIVATE KEY-----",
        "loaded key\n[REDACTED:private_key]",
    ),
    ("GET /api/v1/users/jane.doe@corp.com/orders", "GET /api/v1/users/[REDACTED:email]/orders"),
    ("map[Authorization:[Basic dXNlcjpodW50ZXIy]]", "map[Authorization:[Basic [REDACTED:basic_auth]]]"),
    ("map[Authorization:[Bearer abc.def.ghi]]", "map[Authorization:[Bearer [REDACTED:bearer]]]"),
]


@pytest.mark.parametrize(("text", "expected"), GAPS, ids=[f"gap-{i}" for i in range(len(GAPS))])
def test_review_gaps_are_redacted_idempotently(text: str, expected: str) -> None:
    r = Redactor()
    out = r.redact(text)
    assert out == expected
    assert "hunter2" not in out and "Ab3/xYz" not in out and "ssw0rd" not in out
    assert r.redact(out) == out
    assert redact_with_counts(text)[0] == expected


def test_url_with_port_and_email_in_path_is_not_a_password() -> None:
    out = Redactor().redact("GET http://api:8080/users/jane@corp.com/orders and http://u:pw1@host/p/x@y.com")
    assert out == (
        "GET http://api:8080/users/[REDACTED:email]/orders and http://u:[REDACTED:url_password]@host/p/[REDACTED:email]"
    )


def test_nfkc_folding_applies_to_counts_and_keeps_plain_non_ascii() -> None:
    out, counts = Redactor().redact_with_counts("ｔｏｋｅｎ=abc123xyz café")
    assert out == "token=[REDACTED:token] café"
    assert counts == {"token": 1}


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("0\U0001d794", "0E"),  # normalising makes a Greek capital epsilon next to a digit
        ("a" + "\u043e" * 12 + "b", "a" + "o" * 12 + "b"),  # a long run of Cyrillic o between Latin letters
        ("\u03a1\u0430ss", "Pass"),  # Greek and Cyrillic look-alikes in one run
        (
            "\u043f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
            "\u043f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
        ),
    ],
)
def test_look_alikes_touching_latin_fold_once_and_for_all(text: str, folded: str) -> None:
    redactor = Redactor()
    once = redactor.redact(text)
    assert once == folded
    assert redactor.redact(once) == once


def test_orphan_end_line_without_key_material_above_keeps_the_log() -> None:
    out = Redactor().redact('level=info msg="rotating"\n-----END EC PRIVATE KEY-----\nnext line')
    assert out == 'level=info msg="rotating"\n[REDACTED:private_key]\nnext line'


@pytest.mark.parametrize(
    "text",
    [
        "-----END RSA PRIVATE KEY-----" * 3_400,
        ("A" * 64 + "\n") * 1_500 + "-----END PRIVATE KEY-----",
        "redis://u:" + "p@" * 49_000,
        "redis://u:" + ("a/b@c" * 20_000),
        'password=\\"' + "a" * 99_000,
        "ｐａｓｓｗｏｒｄ＝" * 10_000,
    ],
)
def test_new_detectors_stay_linear_on_hostile_input(text: str) -> None:
    r = Redactor()
    start = time.process_time()
    out = r.redact(text)
    assert time.process_time() - start < 1.0
    assert r.redact(out) == out

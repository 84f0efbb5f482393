"""`selfheal analyze` on hostile or careless input: a clear message and exit 3, never a traceback."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfheal.cli import main
from selfheal.services.offline import run_analyze_command

ROOT = Path(__file__).resolve().parents[3]
LOGS = ROOT / "examples" / "logs"

BILLION_LAUGHS = """\
apiVersion: selfheal.dev/v1alpha1
kind: SelfHealingPolicy
metadata: {name: lol}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
spec: {selector: {matchLabels: {x: *i}}}
"""

POLICIES: dict[str, tuple[bytes, str]] = {
    "spec-a-list": (b"kind: SelfHealingPolicy\nmetadata: {name: p}\nspec: [1, 2]\n", "spec"),
    "spec-a-string": (b"kind: SelfHealingPolicy\nmetadata: {name: p}\nspec: hello\n", "spec"),
    "metadata-a-list": (b"kind: SelfHealingPolicy\nmetadata: [a, b]\nspec: {}\n", "metadata must be a mapping"),
    "metadata-a-string": (b"kind: SelfHealingPolicy\nmetadata: oops\nspec: {}\n", "metadata must be a mapping"),
    "name-a-list": (b"kind: SelfHealingPolicy\nmetadata: {name: [a]}\nspec: {}\n", "metadata.name"),
    "name-a-number": (b"kind: SelfHealingPolicy\nmetadata: {name: 7}\nspec: {}\n", "metadata.name"),
    "not-utf8": (b"kind: SelfHealingPolicy\nmetadata: {name: \xff\xfe}\n", "not UTF-8"),
    "billion-laughs": (BILLION_LAUGHS.encode(), "aliases"),
    "empty": (b"", "empty"),
    "only-comments": (b"# nothing\n---\n", "empty"),
    "two-policies": (
        b"kind: SelfHealingPolicy\nmetadata: {name: a}\n---\nkind: SelfHealingPolicy\nmetadata: {name: b}\n",
        "2 SelfHealingPolicy",
    ),
    "multi-doc-odd-docs": (b"- a list\n---\n42\n---\nkind: Rollout\n", "holds no SelfHealingPolicy"),
    "invalid-yaml": (b"kind: [unclosed\n", "not valid YAML"),
    "deep-nesting": (b"kind: SelfHealingPolicy\nspec: " + b"[" * 5000 + b"]" * 5000 + b"\n", "policy"),
    "huge": (b"kind: SelfHealingPolicy\n# " + b"x" * (2 * 1024 * 1024) + b"\n", "larger than"),
    "bad-regex": (
        b"kind: SelfHealingPolicy\nmetadata: {name: p}\n"
        b"spec: {analysis: {redaction: {patterns: [{name: evil, regex: '(a+)+(?=b)'}]}}}\n",
        "evil",
    ),
}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_err = sys.stderr
    sys.stderr = err
    try:
        args = argparse.Namespace(
            canary_log=str(LOGS / "canary-panic.log"),
            stable_log=str(LOGS / "stable.log"),
            policy=None,
            extra_prompt=None,
            llm_base_url=None,
            llm_model=None,
            llm_api_key_env="OPENAI_API_KEY",
            json=False,
            print_prompt=False,
        )
        for pair in argv:
            key, _, value = pair.partition("=")
            setattr(args, key, value)
        code = run_analyze_command(args, out)
    finally:
        sys.stderr = old_err
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_malformed_policy_file_exits_3_with_a_clear_message(tmp_path: Path, name: str) -> None:
    content, message = POLICIES[name]
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    started = time.process_time()
    code, out, err = run(f"policy={path}")
    assert time.process_time() - started < 5  # CPU time: a billion laughs must not be expanded
    assert code == 3, err
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert out == ""


def test_an_unexpected_fault_is_exit_3_in_one_line_not_a_traceback() -> None:
    args = argparse.Namespace(policy=None)  # a caller that forgot most arguments
    err = io.StringIO()
    old = sys.stderr
    sys.stderr = err
    try:
        code = run_analyze_command(args, io.StringIO())
    finally:
        sys.stderr = old
    assert code == 3
    assert err.getvalue().startswith("selfheal analyze: internal error: AttributeError")
    assert err.getvalue().count("\n") == 1


def test_help_says_every_error_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "3 any error" in text and "never a traceback" in text


@pytest.mark.parametrize("flags", [["--print-prompt"], ["--print-prompt", "--json"], ["--json"], []])
def test_a_reader_that_stops_early_ends_the_output_quietly(flags: list[str]) -> None:
    command = [sys.executable, "-m", "selfheal.cli", "analyze", "--canary-log", str(LOGS / "canary-panic.log")]
    command += ["--stable-log", str(LOGS / "stable.log"), *flags]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert producer.stdout is not None and producer.stderr is not None
    producer.stdout.readline()
    producer.stdout.close()  # like `| head -1`
    err = producer.stderr.read().decode()
    code = producer.wait(timeout=120)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert code in (0, 1, 2)

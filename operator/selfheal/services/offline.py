"""`selfheal analyze`: the verdict pipeline on saved logs, for trying a policy and for CI pipelines."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, TextIO

from selfheal.adapters.files import read_log, read_resource
from selfheal.adapters.llm import LLMClient
from selfheal.domain.evidence import Evidence, PodEvidence, PodLog, Side
from selfheal.domain.policy import LLMProvider, PolicySpec
from selfheal.domain.verdict import VerdictKind
from selfheal.errors import ConfigError
from selfheal.services.judge import Judgement, judge, prepare
from selfheal.services.policies import parse_spec

EXIT_CODES = {VerdictKind.HEALTHY: 0, VerdictKind.UNHEALTHY: 1, VerdictKind.INCONCLUSIVE: 2}
EXIT_USAGE = 3


def load_policy(path: str | None) -> tuple[str, PolicySpec]:
    """The name and spec of the SelfHealingPolicy in a YAML file (defaults without a file)."""
    if path is None:
        return "offline", PolicySpec()
    policy = read_resource(path, "SelfHealingPolicy")
    metadata = policy.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise ConfigError(f"{path}: metadata must be a mapping, not a {type(metadata).__name__}")
    name = metadata.get("name", "offline")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: metadata.name must be a non-empty string, not {type(name).__name__}")
    try:
        return name, parse_spec(policy.get("spec") or {})
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def apply_flags(spec: PolicySpec, args: argparse.Namespace) -> PolicySpec:
    analysis = spec.analysis
    if args.extra_prompt is not None:
        analysis = analysis.model_copy(update={"extra_prompt": args.extra_prompt})
    if args.llm_base_url or args.llm_model:
        if not (args.llm_base_url and args.llm_model):
            raise ConfigError("--llm-base-url and --llm-model go together")
        llm = analysis.llm.model_copy(
            update={
                "provider": LLMProvider.OPENAI,
                "base_url": args.llm_base_url,
                "model": args.llm_model,
                "api_key_secret_ref": None,
            }
        )
        analysis = analysis.model_copy(update={"llm": llm})
    elif analysis.llm.provider != LLMProvider.NONE and not args.print_prompt:
        # A policy's analyzer lives in the cluster (its key in a Secret): offline, say where it is.
        raise ConfigError(
            "the policy names an analyzer; pass --llm-base-url and --llm-model to use one offline, "
            "or remove analysis.llm to use the statistical verdict"
        )
    return spec.model_copy(update={"analysis": analysis})


def evidence_from_logs(name: str, canary: str, stable: str) -> Evidence:
    def pod(side: Side, text: str) -> PodEvidence:
        return PodEvidence(
            name=side.value,
            side=side,
            phase="Running",
            ready=True,
            logs=[PodLog(pod=side.value, container="app", text=text)],
        )

    return Evidence(
        namespace="offline",
        rollout=name,
        canary_hash="canary",
        stable_hash="stable",
        trigger="offline",
        pods=[pod(Side.CANARY, canary), pod(Side.STABLE, stable)],
    )


def result_object(j: Judgement) -> dict[str, Any]:
    v = j.verdict
    return {
        "verdict": v.verdict.value,
        "confidence": v.confidence,
        "summary": v.summary,
        "rootCause": v.root_cause,
        "suggestedFix": v.suggested_fix,
        "analyzer": v.analyzer.value,
        "fingerprint": j.fingerprint,
        "action": j.decision.action.value,
        "reason": j.decision.reason,
        "evidence": [
            {
                "id": t.id,
                "template": t.template,
                "severity": t.severity,
                "status": t.status,
                "canaryCount": t.canary_count,
                "stableCount": t.stable_count,
                "examples": t.examples,
            }
            for t in j.diff.significant()
        ],
        "evidenceRefs": v.evidence_refs,
        "statistical": {
            "verdict": j.statistical.verdict.value,
            "confidence": j.statistical.confidence,
            "summary": j.statistical.summary,
        },
        "analyzerError": j.llm_error,
        # What the LLM or agent answered, before the guards and the decision rules.
        "llm": (
            {"verdict": j.llm.verdict.value, "confidence": j.llm.confidence, "summary": j.llm.summary}
            if j.llm is not None
            else None
        ),
        "redactions": j.redactions,
        "promptTokens": j.bundle.estimated_tokens if j.bundle else 0,
        "tokensUsed": j.tokens,
        "canaryEvents": j.diff.canary_events,
        "stableEvents": j.diff.stable_events,
    }


def print_human(j: Judgement, out: TextIO) -> None:
    v = j.verdict
    print(f"verdict:     {v.verdict.value} (confidence {v.confidence}, analyzer {v.analyzer.value})", file=out)
    print(f"summary:     {v.summary}", file=out)
    print(f"action:      {j.decision.action.value} ({j.decision.reason})", file=out)
    print(f"fingerprint: {j.fingerprint}", file=out)
    if j.llm_error:
        print(f"analyzer:    unavailable ({j.llm_error})", file=out)
    for t in j.diff.significant()[:10]:
        print(
            f"  {t.id} [{t.severity}, {t.status}] canary {t.canary_count} / stable {t.stable_count}: "
            f"{t.template.splitlines()[0][:160]}",
            file=out,
        )
    if j.redactions:
        print("redacted:    " + ", ".join(f"{k}={n}" for k, n in sorted(j.redactions.items())), file=out)


async def _run(args: argparse.Namespace, out: Any) -> int:
    name, spec = load_policy(args.policy)
    spec = apply_flags(spec, args)
    evidence = evidence_from_logs(name, read_log(args.canary_log), read_log(args.stable_log))
    if args.print_prompt:
        _, _, _, bundle = prepare(evidence, spec.analysis)
        if args.json:
            print(
                json.dumps({"messages": bundle.messages, "estimatedTokens": bundle.estimated_tokens}, indent=2),
                file=out,
            )
        else:
            for message in bundle.messages:
                print(f"----- {message['role']} -----\n{message['content']}", file=out)
        return 0
    client = None
    if spec.analysis.llm.provider == LLMProvider.OPENAI:
        llm = spec.analysis.llm
        client = LLMClient(
            llm.base_url,
            os.environ.get(args.llm_api_key_env) or "not-needed",
            llm.model,
            timeout=llm.timeout_seconds,
            max_retries=llm.max_retries,
            temperature=llm.temperature,
        )
    try:
        j = await judge(evidence, spec.analysis, spec.decision, client, prompt=True)
    finally:
        if client is not None:
            await client.aclose()
    if args.json:
        print(json.dumps(result_object(j), indent=2), file=out)
    else:
        print_human(j, out)
    return EXIT_CODES[j.verdict.verdict]


def run_analyze_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Exit 0, 1 or 2 for a verdict and 3 for any error: a bad file or flag, an unreadable answer, or a
    fault of our own, which is reported in one line rather than a traceback."""
    try:
        return asyncio.run(_run(args, _Quiet(out)))
    except ConfigError as e:
        print(f"selfheal analyze: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("selfheal analyze: interrupted", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # the promise of exit code 3 holds for faults nobody foresaw
        detail = " ".join(str(e).split())[:300]
        print(f"selfheal analyze: internal error: {type(e).__name__}: {detail}", file=sys.stderr)
        return EXIT_USAGE


class _Quiet:
    """Output that goes silent when its reader goes away (``selfheal analyze ... | head -1``)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._closed = False

    def write(self, text: str) -> int:
        if self._closed:
            return len(text)
        try:
            return self._out.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        if self._closed:
            return
        try:
            self._out.flush()
        except BrokenPipeError:
            self._silence()

    def _silence(self) -> None:
        self._closed = True
        # Point the descriptor at /dev/null, so the interpreter's final flush does not complain.
        try:
            fd = self._out.fileno()
        except (AttributeError, OSError, ValueError):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)

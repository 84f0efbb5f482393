"""The `selfheal` command: run the operator, analyze saved logs offline, print the version."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from selfheal import __version__

if TYPE_CHECKING:
    from selfheal.services.leadership import LeaseSettings

LOG_FORMATS = ("plain", "full", "json")
# The bearer token the verdict endpoint asks for (unset or empty: none), from the environment so that it
# can come from a Secret without showing in the command line.
VERDICT_TOKEN_ENV = "SELFHEAL_VERDICT_TOKEN"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
# What each `selfheal demo --scenario` rolls out, and what selfheal is expected to do.
DEMO_SCENARIOS = {
    "panic": "the new image panics on some requests and its panic-rate analysis fails: selfheal aborts the "
    "canary, explains why and opens a GitHub issue for a coding agent; the agent's pull request is merged, "
    "the fixed image rolls out and selfheal verifies it (the ticket Resolved, the issue closed)",
    "http500": "the new image answers HTTP 500 to most requests while its only metric (restarts) passes: "
    "selfheal's look at the logs catches it and aborts",
    "colors": "the new image serves random colours: different, not broken; selfheal promotes it at each "
    "indefinite pause and opens no ticket",
    "inline": "the Rollout's analysis step asks selfheal's verdict endpoint (an AnalysisTemplate with a web "
    "metric); the new image panics, selfheal answers unhealthy and Argo aborts on its own analysis; then the "
    "same fix loop as panic",
}


def _run(args: argparse.Namespace) -> int:
    if args.namespaces and args.all_namespaces:
        print("selfheal run: use either --namespace or --all-namespaces, not both", file=sys.stderr)
        return 3
    if not args.namespaces and not args.all_namespaces:
        print(
            "selfheal run: say which namespaces to watch: --namespace NS (repeatable) or --all-namespaces",
            file=sys.stderr,
        )
        return 3
    from selfheal.handlers.runner import run_operator

    run_operator(
        namespaces=args.namespaces,
        all_namespaces=args.all_namespaces,
        lease=_lease(args) if args.leader_election else None,
        liveness=args.liveness,
        log_level=args.log_level,
        log_format=args.log_format,
        metrics_port=args.metrics_port,
        verdict_port=args.verdict_port,
        verdict_token=os.environ.get(VERDICT_TOKEN_ENV, "").strip(),
    )
    return 0


def _lease(args: argparse.Namespace) -> LeaseSettings:
    from selfheal.services.leadership import LeaseSettings

    duration = args.lease_duration
    return LeaseSettings(
        namespace=args.lease_namespace or _own_namespace(),
        name=args.lease_name,
        duration_seconds=duration,
        renew_deadline_seconds=duration * 2 / 3,
        retry_seconds=duration * 2 / 15,
    )


def _own_namespace() -> str:
    found = os.environ.get("POD_NAMESPACE")
    if found:
        return found
    try:
        return Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip() or "default"
    except OSError:
        return "default"


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range (0-65535): {port}")
    return port


def _version(_: argparse.Namespace) -> int:
    print(f"selfheal {__version__}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from selfheal.services.offline import run_analyze_command

    return run_analyze_command(args)


def _demo(args: argparse.Namespace) -> int:
    from selfheal.testing.demo import run_demo

    return run_demo(args.scenario, keep=args.keep, json_output=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfheal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run the operator (through Kopf)",
        description=(
            "Run the selfheal operator: watch Argo Rollouts, AnalysisRuns and SelfHealingPolicies in the chosen "
            "namespaces, judge failing canaries, act on them and follow each RemediationTicket. It uses the "
            "kubeconfig of $KUBECONFIG (or ~/.kube/config), or the in-cluster ServiceAccount."
        ),
        epilog=(
            "Environment: SELFHEAL_TICKET_POLL_SECONDS (30), SELFHEAL_POLICY_TICK_SECONDS (10), "
            "SELFHEAL_LOG_WATCH_SCALE (1.0), SELFHEAL_GITHUB_REFUSED_RETRY_SECONDS (600), "
            "SELFHEAL_VERDICT_TOKEN (the verdict endpoint's bearer token; unset: none)."
        ),
    )
    run.add_argument(
        "-n", "--namespace", dest="namespaces", action="append", default=[], help="namespace to watch (repeatable)"
    )
    run.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--standalone", action="store_true", help="a single replica, no coordination with others (the default)"
    )
    mode.add_argument(
        "--leader-election",
        action="store_true",
        help="several replicas: only the one holding the Lease (coordination.k8s.io/v1) runs; the others stand by",
    )
    run.add_argument("--lease-name", default="selfheal", help="the Lease's name (default: selfheal)")
    run.add_argument(
        "--lease-namespace",
        default=None,
        help="the Lease's namespace (default: $POD_NAMESPACE, else the ServiceAccount's namespace, else default)",
    )
    run.add_argument(
        "--lease-duration",
        type=_positive_int,
        default=15,
        metavar="SECONDS",
        help="how long a Lease that is not renewed keeps its holder: the hand-over time after a replica dies "
        "(default: 15; renewed every 2/15 of it, given up after 2/3 of it without a renewal)",
    )
    run.add_argument(
        "--liveness", default=None, metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="serve Prometheus metrics at http://0.0.0.0:PORT/metrics (default: off; 0 disables)",
    )
    run.add_argument(
        "--verdict-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="answer Argo Rollouts' web metric provider at http://0.0.0.0:PORT/api/v1/verdict, so that an "
        "AnalysisTemplate asks selfheal for its verdict (default: off; 0 disables); with $SELFHEAL_VERDICT_TOKEN "
        "set, only requests carrying it as a bearer token are answered",
    )
    run.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="least severe operator log lines printed: debug adds Kopf's and the clients' detail, warning and "
        "error print problems only (default: %(default)s)",
    )
    run.add_argument(
        "--log-format",
        default="full",
        choices=LOG_FORMATS,
        help="operator log lines as Kopf writes them: plain (the message), full (time, level, logger, message) "
        "or json (one object per line, for log collectors) (default: %(default)s)",
    )
    run.set_defaults(func=_run)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=_version)

    analyze = commands.add_parser(
        "analyze",
        help="run the verdict pipeline on saved logs (exit 0 healthy, 1 unhealthy, 2 inconclusive, 3 error)",
        description=(
            "Judge a canary from saved logs, as the operator would: redact, template and diff the canary log "
            "against the stable log, reach the statistical verdict, ask the LLM if one is given, and apply the "
            "policy's decision rules. Nothing is sent anywhere without --llm-base-url."
        ),
        epilog="Exit codes: 0 healthy, 1 unhealthy, 2 inconclusive, 3 any error (a bad file or flag, an "
        "unusable analyzer answer when no verdict can be given, or an unexpected fault, reported in one line "
        "on stderr; never a traceback). An unavailable analyzer is not an error: the policy's fallback "
        "gives the verdict.",
    )
    analyze.add_argument("--canary-log", required=True, metavar="FILE", help="the new version's (canary's) log")
    analyze.add_argument("--stable-log", required=True, metavar="FILE", help="the current version's (stable's) log")
    analyze.add_argument(
        "--policy",
        metavar="FILE",
        help="a SelfHealingPolicy YAML whose analysis and decision sections apply (default: the policy defaults)",
    )
    analyze.add_argument(
        "--extra-prompt",
        default=None,
        metavar="TEXT",
        help="text added to the LLM prompt, as spec.analysis.extraPrompt",
    )
    analyze.add_argument(
        "--llm-base-url",
        default=None,
        metavar="URL",
        help="an OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp, ...), e.g. http://127.0.0.1:8080/v1; "
        "needs --llm-model",
    )
    analyze.add_argument("--llm-model", default=None, metavar="MODEL", help="the model name the endpoint serves")
    analyze.add_argument(
        "--llm-api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the LLM API key (default: %(default)s)",
    )
    analyze.add_argument(
        "--json", action="store_true", help="print one JSON object (verdict, evidence, what the LLM said, ...)"
    )
    analyze.add_argument(
        "--print-prompt", action="store_true", help="print the redacted messages an LLM would get, and send nothing"
    )
    analyze.set_defaults(func=_analyze)

    demo = commands.add_parser(
        "demo",
        help="watch selfheal heal a canary on a throwaway local control plane (exit 0 when it did)",
        description=textwrap.fill(
            "Start a real kube-apiserver and etcd from $KUBEBUILDER_ASSETS, a simulated Argo Rollouts "
            "controller, a GitHub stand-in and the operator, roll out a canary and narrate what selfheal does. "
            "Nothing outside this machine is touched; everything is torn down at the end (15-30 s).",
            width=100,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n"
        + "\n".join(
            textwrap.fill(text, width=100, initial_indent=f"  {name:9}", subsequent_indent=" " * 11)
            for name, text in DEMO_SCENARIOS.items()
        ),
    )
    demo.add_argument(
        "--scenario",
        default="panic",
        choices=tuple(DEMO_SCENARIOS),
        help="which canary to roll out (default: %(default)s; see the list below)",
    )
    demo.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    demo.add_argument("--json", action="store_true", help="print one JSON summary instead of the narration")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors; our usage errors are 3
        return 3 if e.code not in (0, None) else 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

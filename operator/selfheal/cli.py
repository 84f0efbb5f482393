"""The `selfheal` command: run the operator, analyze saved logs offline, print the version."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from selfheal import __version__

LOG_FORMATS = ("plain", "full", "json")


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
        standalone=args.standalone,
        peering=args.peering,
        priority=args.priority,
        liveness=args.liveness,
        log_level=args.log_level,
        log_format=args.log_format,
        metrics_port=args.metrics_port,
    )
    return 0


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

    run = commands.add_parser("run", help="run the operator (through Kopf)")
    run.add_argument(
        "-n", "--namespace", dest="namespaces", action="append", default=[], help="namespace to watch (repeatable)"
    )
    run.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--standalone", action="store_true", help="run without peering (a single replica; no coordination with others)"
    )
    mode.add_argument(
        "--peering",
        default=None,
        help="the Kopf peering object used to coordinate replicas (default: Kopf's own choice: "
        "its default peering when the peering CRDs exist, standalone otherwise)",
    )
    run.add_argument("--priority", type=int, default=None, help="peering priority of this replica")
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
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    run.add_argument("--log-format", default="full", choices=LOG_FORMATS)
    run.set_defaults(func=_run)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=_version)

    analyze = commands.add_parser(
        "analyze",
        help="run the verdict pipeline on saved logs (exit 0 healthy, 1 unhealthy, 2 inconclusive, 3 error)",
        description="Run the verdict pipeline on saved logs: redaction, log diff, statistical verdict and, "
        "with --llm-base-url, the LLM.",
        epilog="Exit codes: 0 healthy, 1 unhealthy, 2 inconclusive, 3 any error (a bad file or flag, an "
        "unusable analyzer answer when no verdict can be given, or an unexpected fault, reported in one line "
        "on stderr; never a traceback). An unavailable analyzer is not an error: the policy's fallback "
        "gives the verdict.",
    )
    analyze.add_argument("--canary-log", required=True, metavar="FILE")
    analyze.add_argument("--stable-log", required=True, metavar="FILE")
    analyze.add_argument("--policy", metavar="FILE", help="a SelfHealingPolicy YAML (its analysis and decision)")
    analyze.add_argument("--extra-prompt", default=None, metavar="TEXT")
    analyze.add_argument("--llm-base-url", default=None, metavar="URL")
    analyze.add_argument("--llm-model", default=None, metavar="MODEL")
    analyze.add_argument(
        "--llm-api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the LLM API key (default: %(default)s)",
    )
    analyze.add_argument("--json", action="store_true", help="print one JSON object")
    analyze.add_argument("--print-prompt", action="store_true", help="print the redacted messages for the LLM")
    analyze.set_defaults(func=_analyze)

    demo = commands.add_parser(
        "demo", help="watch selfheal heal a canary on a throwaway local control plane (exit 0 when it did)"
    )
    demo.add_argument("--scenario", default="panic", choices=("panic", "colors", "http500"))
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

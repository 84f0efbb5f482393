"""`selfheal <command> --help` explains every command and option, and names each demo scenario."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from selfheal.cli import DEMO_SCENARIOS, build_parser
from selfheal.testing.demo import SCENARIOS


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("command", ["run", "analyze", "demo"])
def test_every_option_says_what_it_does(command: str) -> None:
    parser = subcommands()[command]
    assert parser.description and len(parser.description) > 60, f"{command} has no description"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and len(action.help) > 10, f"selfheal {command} {action.option_strings} has no help"


def test_run_help_explains_the_log_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "selfheal.cli", "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Run the selfheal operator" in out
    log_level = out[out.index("--log-level {") :]
    assert "debug" in log_level and "warning" in log_level and "(default: info)" in log_level
    log_format = out[out.index("--log-format {") :]
    assert "json" in log_format and "one object per line" in log_format


def test_demo_help_describes_each_scenario_it_offers() -> None:
    demo = subcommands()["demo"]
    (scenario,) = [a for a in demo._actions if "--scenario" in a.option_strings]
    assert set(scenario.choices) == set(SCENARIOS) == set(DEMO_SCENARIOS)
    out = demo.format_help()
    for name in SCENARIOS:
        assert f"\n  {name} " in out, name

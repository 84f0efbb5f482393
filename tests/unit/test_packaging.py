"""Packaging stays consistent: the image runs the CLI, dependencies are bounded, the chart matches the package."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import selfheal
from selfheal.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CHART = ROOT / "charts" / "selfheal"

# The runtime dependencies the design names, one per outside system plus the framework.
DESIGN_DEPENDENCIES = ("kopf", "kubernetes-asyncio", "openai", "httpx", "pydantic", "tenacity")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def exec_form(instruction: str) -> list[str]:
    """The last ``instruction`` of the final stage, which must be in exec (JSON) form."""
    stages = [i for i, (name, _) in enumerate(dockerfile_instructions()) if name == "FROM"]
    final = dockerfile_instructions()[stages[-1] :]
    values = [rest for name, rest in final if name == instruction]
    assert values, f"the final stage has no {instruction}"
    form = json.loads(values[-1])  # a shell form would wrap the CLI in /bin/sh and swallow SIGTERM
    assert isinstance(form, list) and all(isinstance(x, str) for x in form), values[-1]
    return form


# --- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    assert exec_form("ENTRYPOINT") == ["selfheal"]


def test_dockerfile_cmd_parses_with_the_cli() -> None:
    args = build_parser().parse_args(exec_form("CMD"))
    assert args.command == "run"
    assert args.all_namespaces is True and args.namespaces == []
    assert args.standalone is True
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    assert args.log_format in ("plain", "full", "json")


def test_dockerfile_runs_as_the_chart_non_root_user_and_exposes_the_liveness_port() -> None:
    final_users = [rest for name, rest in dockerfile_instructions() if name == "USER"]
    assert final_users and final_users[-1] not in ("0", "root")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert final_users[-1] == str(values["podSecurityContext"]["runAsUser"])
    exposed = [rest for name, rest in dockerfile_instructions() if name == "EXPOSE"]
    assert "8080" in " ".join(exposed)


def test_dockerfile_copies_only_files_that_exist_and_are_not_ignored() -> None:
    ignored = (
        [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
        if (ROOT / ".dockerignore").exists()
        else []
    )
    for name, rest in dockerfile_instructions():
        if name != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), f"{source} is .dockerignored"


# --- pyproject.toml --------------------------------------------------------------------------------


def requirements() -> dict[str, Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    return {r.name.lower().replace("_", "-"): r for r in reqs}


@pytest.mark.parametrize("name", DESIGN_DEPENDENCIES)
def test_design_dependency_is_declared_with_lower_and_upper_bound(name: str) -> None:
    reqs = requirements()
    assert name in reqs, f"{name} is not a runtime dependency"
    operators = {spec.operator for spec in reqs[name].specifier}
    assert operators & {">=", ">", "~=", "=="}, f"{name} has no lower bound: {reqs[name]}"
    assert operators & {"<", "<=", "~=", "=="}, f"{name} has no upper bound: {reqs[name]}"


def test_every_runtime_dependency_is_bounded() -> None:
    for name, req in requirements().items():
        operators = {spec.operator for spec in req.specifier}
        assert operators & {">=", ">", "~=", "=="} and operators & {"<", "<=", "~=", "=="}, f"{name}: {req}"


def test_installed_versions_satisfy_the_declared_bounds() -> None:
    from importlib.metadata import version

    for name, req in requirements().items():
        assert req.specifier.contains(version(name), prereleases=True), f"{name} {version(name)} not in {req}"


def test_console_script_points_at_the_cli() -> None:
    assert PYPROJECT["project"]["scripts"]["selfheal"] == "selfheal.cli:main"
    module, _, attribute = PYPROJECT["project"]["scripts"]["selfheal"].partition(":")
    import importlib

    assert callable(getattr(importlib.import_module(module), attribute))


def test_installed_entry_point_matches_pyproject() -> None:
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name == "selfheal"}
    assert scripts == {"selfheal": "selfheal.cli:main"}


def test_package_version_is_the_project_version() -> None:
    assert PYPROJECT["project"]["version"] == selfheal.__version__


# --- the chart -------------------------------------------------------------------------------------


def test_chart_crds_are_identical_to_the_top_level_crds() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert top, "no CRDs in crds/"
    assert sorted(chart) == sorted(top)
    for name in top:
        assert chart[name] == top[name], f"charts/selfheal/crds/{name} differs from crds/{name}"


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert str(chart["appVersion"]) == selfheal.__version__


# --- examples/demo: the demo app, as shipped -------------------------------------------------------

DEMO = ROOT / "examples" / "demo"


def demo_docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEMO / name).read_text()) if d]


def test_demo_rollout_is_the_canary_demo() -> None:
    from selfheal.domain.argo import Rollout

    (doc,) = demo_docs("rollout-canary-demo.yaml")
    ro = Rollout.from_obj(doc)
    assert ro.name == "canary-demo" and ro.is_canary
    assert ro.labels["app"] == "canary-demo"
    assert ro.images == ["argoproj/rollouts-demo:blue"]
    assert [s.describe() for s in ro.steps] == [
        "setWeight: 20",
        "pause: 10s",
        "setWeight: 40",
        "pause: 10s",
        "setWeight: 60",
        "pause: 10s",
        "setWeight: 80",
        "pause: 10s",
    ]
    assert ro.background_analysis and ro.background_analysis_starting_step == 1
    canary = doc["spec"]["strategy"]["canary"]
    assert canary["canaryMetadata"]["labels"] == {"role": "canary"}
    assert canary["stableMetadata"]["labels"] == {"role": "stable"}
    (template,) = demo_docs("analysistemplate-error-rate.yaml")
    assert [t["templateName"] for t in canary["analysis"]["templates"]] == [template["metadata"]["name"]]
    # every arg the template declares without a value is passed by the Rollout
    passed = {a["name"] for a in canary["analysis"].get("args", [])}
    assert {a["name"] for a in template["spec"].get("args", []) if "value" not in a} <= passed
    services = {d["metadata"]["name"] for d in demo_docs("services-canary-demo.yaml")}
    assert {canary["canaryService"], canary["stableService"]} <= services


def test_demo_analysis_template_measures_the_error_rate() -> None:
    from selfheal.testing.argosim.expr import evaluate, jsonpath

    (doc,) = demo_docs("analysistemplate-error-rate.yaml")
    assert doc["kind"] == "AnalysisTemplate"
    (metric,) = doc["spec"]["metrics"]
    assert metric["name"] == "web" and metric["interval"] == "10s"
    assert "failureLimit" in metric
    web = metric["provider"]["web"]
    assert web["url"].startswith("http") and "/api/v1/query?" in web["url"]
    # a Prometheus answer, read through the template's jsonPath and judged by its successCondition
    answer = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1764147600.0, "0.01"]}]},
    }
    value = jsonpath(web["jsonPath"], answer)
    assert value == "0.01"
    assert evaluate(metric["successCondition"], value) is True
    assert evaluate(metric["successCondition"], "0.85") is False


def test_demo_policy_passes_the_model() -> None:
    from selfheal.domain.policy import AgentType, LLMProvider, SelfHealingPolicy

    (doc,) = demo_docs("policy-canary-demo.yaml")
    policy = SelfHealingPolicy.model_validate(doc)
    assert policy.selects({"app": "canary-demo"}) and not policy.selects({"app": "other"})
    assert policy.spec.analysis.llm.provider == LLMProvider.OPENAI
    assert policy.spec.analysis.llm.base_url
    assert policy.spec.analysis.extra_prompt == "Ignore color changes."
    github = policy.spec.remediation.github
    assert github is not None and github.agent.type == AgentType.COPILOT
    (rollout,) = demo_docs("rollout-canary-demo.yaml")
    assert policy.selects(rollout["metadata"]["labels"])


def _value_paths(values: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths += _value_paths(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return paths


def test_chart_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text().split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", readme, flags=re.MULTILINE))
    for path in _value_paths(values):
        parts = path.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        assert ancestors & documented, f"charts/selfheal/README.md does not document `{path}`"
    for key in documented:  # and documents nothing that does not exist
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"README documents `{key}`, not in values.yaml"
            node = node[part]

"""Packaging stays consistent: the image runs the CLI, dependencies are bounded, declared and pinned, and the
installed package (chart included) is the one the tests run."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import sys
import sysconfig
import tomllib
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import selfheal
from selfheal.cli import build_parser
from selfheal.testing import assets

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


# --- what the tests import is what was installed ---------------------------------------------------


def _editable() -> bool:
    direct_url = json.loads(distribution("selfheal").read_text("direct_url.json") or "{}")
    return bool(direct_url.get("dir_info", {}).get("editable"))


def test_the_imported_selfheal_is_the_installed_one() -> None:
    """Under CI (SELFHEAL_EXPECT_INSTALL=wheel) the tests run the wheel from site-packages, not operator/;
    elsewhere, whatever is installed is what is imported (an editable install points at operator/)."""
    imported = Path(selfheal.__file__).resolve()
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    if os.environ.get("SELFHEAL_EXPECT_INSTALL") == "wheel" or not _editable():
        assert not _editable(), "selfheal is installed in editable mode"
        assert imported.is_relative_to(site_packages), f"selfheal imported from {imported}, not {site_packages}"
        assert not imported.is_relative_to(ROOT), f"selfheal imported from the checkout: {imported}"
        assert assets.chart_dir() == assets.PACKAGED_CHART, "the wheel does not carry the chart"
        assert str(ROOT / "operator") not in sys.path, "operator/ is on sys.path: the tests would bypass the wheel"
    else:
        assert imported.is_relative_to(ROOT / "operator"), f"editable install, but selfheal imported from {imported}"


def test_the_chart_the_package_uses_is_the_repository_chart() -> None:
    """The chart in the wheel is a build-time copy of charts/selfheal, file for file."""
    ours = assets.chart_dir()
    repo = ROOT / "charts" / "selfheal"
    files = {p.relative_to(repo) for p in repo.rglob("*") if p.is_file()}
    assert {p.relative_to(ours) for p in ours.rglob("*") if p.is_file()} == files
    for name in files:
        assert (ours / name).read_bytes() == (repo / name).read_bytes(), f"{name} differs from charts/selfheal"
    assert assets.selfheal_crds() == sorted((ours / "crds").glob("*.yaml"))


# --- declared dependencies are the imported ones ---------------------------------------------------

# Our own modules: the package, the tests' helpers, and the scripts of tests/ and bench/ that import each other.
FIRST_PARTY = {"selfheal", "tests"} | {p.stem for folder in ("tests", "bench") for p in (ROOT / folder).rglob("*.py")}


def _imported_distributions(*folders: Path, installed: bool = True) -> set[str]:
    """The distributions whose modules the code under ``folders`` imports (anywhere in a file).

    With ``installed=False`` a module no installed distribution provides counts under its own name
    (a benchmark-only dependency need not be installed for the tests)."""
    modules: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    outside = modules - set(sys.stdlib_module_names) - FIRST_PARTY
    mapping = packages_distributions()
    missing = sorted(m for m in outside if m not in mapping)
    if installed:
        assert not missing, f"imported but installed by no distribution: {missing}"
    return {_normal(d) for m in outside for d in mapping.get(m, [m])}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(*extras: str) -> set[str]:
    project = PYPROJECT["project"]
    reqs = project["dependencies"] if not extras else [r for e in extras for r in project["optional-dependencies"][e]]
    return {_normal(Requirement(r).name) for r in reqs}


def test_runtime_dependencies_are_exactly_what_the_package_imports() -> None:
    assert _imported_distributions(ROOT / "operator" / "selfheal") == _declared()


def test_test_dependencies_are_imported_by_the_tests_or_are_pytest_plugins() -> None:
    from importlib.metadata import entry_points

    used = _imported_distributions(ROOT / "tests") - _declared()
    plugins = {_normal(ep.dist.name) for ep in entry_points(group="pytest11") if ep.dist is not None}
    declared = _declared("test")
    assert used <= declared | {"pytest"}, f"tests import undeclared {sorted(used - declared)}"
    unused = declared - used - {"pytest"} - plugins
    assert not unused, f"declared for the tests, never imported nor a pytest plugin: {sorted(unused)}"


def test_benchmarks_import_only_declared_packages() -> None:
    used = _imported_distributions(ROOT / "bench", installed=False)
    declared = _declared() | _declared("test", "bench")
    assert used <= declared, f"benchmarks import undeclared {sorted(used - declared)}"


def test_lint_tools_are_the_ones_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for tool in ("ruff format --check", "ruff check", "mypy"):
        assert tool in ci, f".ci/run does not run {tool}"
    assert {"ruff", "mypy"} <= _declared("lint")


# --- constraints.txt pins the whole CI environment -------------------------------------------------


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version and " " not in line, f"constraints.txt: {line!r} is not a name==version pin"
        pins[_normal(name)] = version
    return pins


def test_constraints_pin_every_declared_dependency_within_its_bounds() -> None:
    pins = _constraints()
    project = PYPROJECT["project"]
    build = PYPROJECT["build-system"]["requires"]
    every = [*project["dependencies"], *(r for reqs in project["optional-dependencies"].values() for r in reqs), *build]
    for raw in every:
        req = Requirement(raw)
        name = _normal(req.name)
        assert name in pins, f"constraints.txt does not pin {name} (refresh it with `bash .ci/lock`)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"
    for tool in ("pip", "build", "setuptools", "wheel"):
        assert tool in pins, f"constraints.txt does not pin the build tool {tool}"


def test_ci_installs_with_the_constraints() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'PIP_CONSTRAINT="$root/constraints.txt"' in ci
    assert "pip install -e" not in ci and "--editable" not in ci, ".ci/run must test the built wheel"

"""The image build, read from the Dockerfile (no Docker engine needed): a pinned base, the dependencies in a
layer of their own built from constraints.txt before the source is copied, nothing to build with at run time."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            name, _, rest = line.strip().partition(" ")
            out.append((name.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage, its FROM first (the ARGs before the first FROM are left out)."""
    found: list[list[tuple[str, str]]] = []
    for name, rest in instructions():
        if name == "FROM":
            found.append([])
        if found:
            found[-1].append((name, rest))
    return found


def base_image() -> str:
    (default,) = [rest for name, rest in instructions() if name == "ARG" and rest.startswith("PYTHON_IMAGE=")]
    return default.partition("=")[2]


def test_the_base_is_one_pinned_python_release() -> None:
    assert PINNED_BASE.match(base_image()), f"{base_image()} floats: pin python:3.11.X-slim-bookworm"
    for stage in stages():
        image = stage[0][1].split()[0]
        assert image == "${PYTHON_IMAGE}", f"FROM {image}: every stage starts from the pinned base"


def test_dependencies_are_installed_from_the_constraints_before_the_source_is_copied() -> None:
    build = stages()[0]

    def position(instruction: str, holds: str) -> int:
        return next(i for i, (name, rest) in enumerate(build) if name == instruction and holds in rest)

    constraints = position("COPY", "constraints.txt")
    dependencies = position("RUN", "--constraint constraints.txt --requirement requirements.txt")
    source = position("COPY", ". ./")
    package = position("RUN", "install --no-deps")
    assert constraints < dependencies < source < package, "constraints, dependency layer, source, the package"
    # What the source step copies cannot reach the dependency layer: only the two files it reads come first.
    assert build[constraints][1].split()[:-1] == ["constraints.txt", "pyproject.toml"]


def test_the_dependency_layer_installs_what_pyproject_declares(tmp_path: Path) -> None:
    (run,) = [rest for name, rest in stages()[0] if name == "RUN" and "tomllib" in rest]
    words = shlex.split(run.split(">")[0])
    code = words[words.index("-c") + 1]
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    listed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert listed.stdout.split() == PYPROJECT["project"]["dependencies"]


def test_the_final_stage_has_the_packages_and_no_build_tools() -> None:
    build, final = stages()[0], stages()[-1]
    assert any(n == "RUN" and "venv --without-pip /opt/selfheal" in r for n, r in build), "no pip in the runtime venv"
    copies = [rest for name, rest in final if name == "COPY"]
    assert copies == ["--from=build /opt/selfheal /opt/selfheal"], copies
    for name, rest in final:
        if name == "RUN":
            assert not re.search(r"\b(apt-get|apk|pip|gcc|make|build-essential)\b", rest), rest
    assert any(n == "ENV" and "PATH=/opt/selfheal/bin:$PATH" in r for n, r in final)


def test_the_image_listens_where_the_chart_looks() -> None:
    values = yaml.safe_load((ROOT / "charts" / "selfheal" / "values.yaml").read_text())
    exposed = " ".join(rest for name, rest in stages()[-1] if name == "EXPOSE").split()
    assert exposed == ["8080", str(values["metrics"]["port"])]


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    }
    assert {".git", "tests", "bench", "**/__pycache__", "**/*.egg-info"} <= ignored
    for needed in ("pyproject.toml", "constraints.txt", "README.md", "operator", "charts"):
        assert needed not in ignored, needed

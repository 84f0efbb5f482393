"""The layers of DESIGN.md hold: domain is pure, only handlers import kopf, adapters own the outside."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "selfheal"
OUTSIDE = {"kopf", "kubernetes_asyncio", "kubernetes", "httpx", "httpx2", "openai", "aiohttp", "tenacity", "yaml"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module)
    return roots


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


# Libraries the pure core may use besides the standard library: computation on values, no I/O and no
# clients (pydantic; RE2, the linear-time regex engine; detect-secrets, whose patterns redaction reuses).
PURE = {"pydantic", "pydantic_core", "re2", "detect_secrets"}


@pytest.mark.parametrize("path", modules("domain"), ids=lambda p: p.name)
def test_domain_imports_only_stdlib_and_pure_libraries(path: Path) -> None:
    outside = {top(m) for m in imported_roots(path)} & OUTSIDE
    assert not outside, f"{path.name} imports {sorted(outside)}"
    third_party = {top(m) for m in imported_roots(path)} - set(sys.stdlib_module_names) - {"selfheal", "__future__"}
    assert third_party <= PURE, f"{path.name} imports {sorted(third_party - PURE)}"
    ours = {m for m in imported_roots(path) if top(m) == "selfheal"}
    assert all(m.startswith("selfheal.domain") or m == "selfheal.errors" or m == "selfheal" for m in ours), ours


def test_only_handlers_import_kopf() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "kopf" in {top(m) for m in imported_roots(path)} and path.parent.name != "handlers"
    ]
    assert offenders == []


@pytest.mark.parametrize("layer", ["services", "adapters"])
def test_services_and_adapters_do_not_import_handlers(layer: str) -> None:
    for path in modules(layer):
        assert not any(m.startswith("selfheal.handlers") for m in imported_roots(path)), path.name


def test_services_reach_the_outside_only_through_adapters() -> None:
    for path in modules("services"):
        outside = {top(m) for m in imported_roots(path)} & OUTSIDE
        assert not outside, f"services/{path.name} imports {sorted(outside)}"


def test_production_code_does_not_import_the_test_kit() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "testing":
            continue
        allowed = {"selfheal.testing.demo"} if path == PACKAGE / "cli.py" else set()  # `selfheal demo`, lazily
        assert not any(m.startswith("selfheal.testing") and m not in allowed for m in imported_roots(path)), path.name


def test_every_module_says_what_it_owns() -> None:
    missing = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []


def test_operator_folder_is_a_source_root_not_a_package() -> None:
    assert not (PACKAGE.parent / "__init__.py").exists()

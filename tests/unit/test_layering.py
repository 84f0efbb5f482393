"""The layers of DESIGN.md hold: domain is pure, only handlers import kopf, adapters own the outside.

Imports are read from the syntax tree, relative ones (``from ..adapters import kube``) resolved against
the module's package, and imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "selfheal"
OUTSIDE = {"kopf", "kubernetes_asyncio", "kubernetes", "httpx", "httpx2", "openai", "aiohttp", "tenacity", "yaml"}
OUTSIDE |= {"prometheus_client", "a2a"}
# The pure core computes; it starts no thread, process or event loop, and touches no file or socket.
IMPURE = {
    "asyncio",
    "concurrent",
    "glob",
    "io",
    "multiprocessing",
    "os",
    "pathlib",
    "shutil",
    "signal",
    "socket",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
}
FILE_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "open", "unlink", "mkdir", "iterdir", "glob"}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``selfheal.domain.logs`` for ``.../selfheal/domain/logs.py`` (a package for its ``__init__``)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from ... import`` names, relative levels resolved against ``module``."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    if len(base) != len(package) - (node.level - 1) or not base:
        raise ImportError(f"relative import beyond the top-level package in {module}")
    return ".".join([*base, node.module] if node.module else base)


def imported_roots(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module the file imports, absolute; ``from x import y`` also counts ``x.y`` (y may be a module)."""
    module, is_package = module_name(path, root), path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = resolve(node, module, is_package)
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def file_io_calls(path: Path) -> list[str]:
    """Calls of ``open(...)`` and of path-like file methods (``x.read_text()``...), as ``line: code``."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Name) and func.id == "open") or (
            isinstance(func, ast.Attribute) and func.attr in FILE_METHODS
        ):
            calls.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
    return calls


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    """The checker itself: a relative import into another layer is seen as what it is."""
    package = tmp_path / "selfheal"
    (package / "domain").mkdir(parents=True)
    sneaky = package / "domain" / "sneaky.py"
    sneaky.write_text(
        "from ..adapters import kube\nfrom . import logs\nfrom .prompt import build\n"
        "def later():\n    from ..services.runtime import Runtime\n"
    )
    assert imported_roots(sneaky, package) >= {
        "selfheal.adapters",
        "selfheal.adapters.kube",
        "selfheal.domain.logs",
        "selfheal.domain.prompt",
        "selfheal.services.runtime",
    }
    (package / "domain" / "__init__.py").write_text("from .. import errors\n")
    assert "selfheal.errors" in imported_roots(package / "domain" / "__init__.py", package)


def test_the_impurity_checks_catch_threads_and_files(tmp_path: Path) -> None:
    package = tmp_path / "selfheal"
    (package / "domain").mkdir(parents=True)
    impure = package / "domain" / "impure.py"
    impure.write_text("import threading\nfrom pathlib import Path\nx = open('f').read()\ny = Path('f').read_text()\n")
    assert {top(m) for m in imported_roots(impure, package)} & IMPURE == {"threading", "pathlib"}
    assert len(file_io_calls(impure)) == 2


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
    allowed = ("selfheal.domain", "selfheal.errors", "selfheal.GROUP", "selfheal.VERSION", "selfheal.API_VERSION")
    assert all(m == "selfheal" or m.startswith(allowed) for m in ours), sorted(ours)


@pytest.mark.parametrize("path", modules("domain"), ids=lambda p: p.name)
def test_domain_starts_no_thread_and_touches_no_file(path: Path) -> None:
    impure = {top(m) for m in imported_roots(path)} & IMPURE
    assert not impure, f"domain/{path.name} imports {sorted(impure)}"
    assert file_io_calls(path) == [], f"domain/{path.name} does file I/O"


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


def test_adapters_do_not_import_services() -> None:
    for path in modules("adapters"):
        assert not any(m.startswith("selfheal.services") for m in imported_roots(path)), path.name


def test_services_reach_the_outside_only_through_adapters() -> None:
    for path in modules("services"):
        outside = {top(m) for m in imported_roots(path)} & OUTSIDE
        assert not outside, f"services/{path.name} imports {sorted(outside)}"


def test_production_code_does_not_import_the_test_kit() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "testing":
            continue
        allowed = ("selfheal.testing.demo",) if path == PACKAGE / "cli.py" else ()  # `selfheal demo`, lazily
        kit = [m for m in imported_roots(path) if m.startswith("selfheal.testing")]
        assert all(m.startswith(allowed) for m in kit) if allowed else not kit, f"{path.name} imports {kit}"


def test_every_module_says_what_it_owns() -> None:
    missing = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []


def test_operator_folder_is_a_source_root_not_a_package() -> None:
    assert not (PACKAGE.parent / "__init__.py").exists()

"""Where the test kit finds the Helm chart, the CRDs and the Argo manifests: installed package or checkout."""

from __future__ import annotations

from pathlib import Path

import selfheal

HERE = Path(__file__).resolve().parent
# Shipped in the package as they are in the repository.
ARGO_CRDS = HERE / "manifests" / "argo-rollouts-crds.yaml"
# A wheel carries the chart here (copied at build time); a checkout has it at charts/selfheal.
PACKAGED_CHART = HERE / "chart"


def package_root() -> Path:
    """The folder the running `selfheal` package was imported from (site-packages, or `operator/`)."""
    return Path(selfheal.__file__).resolve().parents[1]


def checkout_root() -> Path | None:
    """The repository this package is imported from, when it runs from a checkout (editable install)."""
    root = package_root().parent
    return root if (root / "charts" / "selfheal" / "Chart.yaml").is_file() else None


def chart_dir() -> Path:
    """The Helm chart `charts/selfheal`: the copy in the package, else the checkout's."""
    candidates = [PACKAGED_CHART]
    root = checkout_root()
    if root is not None:
        candidates.append(root / "charts" / "selfheal")
    for candidate in candidates:
        if (candidate / "Chart.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        "the Helm chart is neither in the installed package nor in a checkout "
        f"(looked in {', '.join(str(c) for c in candidates)}); reinstall selfheal"
    )


def selfheal_crds() -> list[Path]:
    """Our CustomResourceDefinitions, as the chart installs them."""
    crds = sorted((chart_dir() / "crds").glob("*.yaml"))
    if not crds:
        raise FileNotFoundError(f"no CRDs in {chart_dir() / 'crds'}")
    return crds

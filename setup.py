"""Build step: the wheel carries the Helm chart (and so the CRDs) for the test kit and `selfheal demo`.

Everything else is declared in pyproject.toml. The chart is copied from `charts/selfheal` when the
package is built, so the repository keeps a single copy; an editable install reads it in place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CHART = Path(__file__).resolve().parent / "charts" / "selfheal"
TARGET = Path("selfheal") / "testing" / "chart"


class BuildWithChart(build_py):
    """``build_py`` that also copies the chart into ``selfheal/testing/chart`` of the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not (CHART / "Chart.yaml").is_file():
            raise FileNotFoundError(f"{CHART} is missing: the package ships the Helm chart")
        shutil.copytree(CHART, Path(self.build_lib) / TARGET, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithChart})

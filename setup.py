"""Build hook: ship the Snakemake workflow with the package.

The workflow lives at the top of the repository (Snakefile, workflow/, scripts/, config/, envs/,
profiles/: the layout a Snakemake user expects).  A built package (``pip install .``, a wheel) gets
a copy of it in ``stacklm/workflow_files/``, where ``stacklm run`` finds it when there is no
checkout (:func:`stacklm.workflow.cli.find_snakefile`).  Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: what the workflow needs at run time, relative to the repository root
WORKFLOW_FILES = (
    "Snakefile",
    "workflow",
    "scripts",
    "config/config.yaml",
    "config/schema.yaml",
    "envs",
    "profiles",
)
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class build_py_with_workflow(build_py):  # noqa: N801 - setuptools command naming
    """``build_py``, then copy the workflow into the built package (not into the source tree)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs the checkout's own workflow
        target = Path(self.build_lib) / "stacklm" / "workflow_files"
        shutil.rmtree(target, ignore_errors=True)
        for name in WORKFLOW_FILES:
            source = HERE / name
            if not source.exists():
                raise FileNotFoundError(f"{source}: part of the workflow shipped with stacklm")
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, ignore=_SKIP)
            else:
                shutil.copy2(source, dest)


setup(cmdclass={"build_py": build_py_with_workflow})

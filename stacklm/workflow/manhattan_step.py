"""The Manhattan plot step of a genotype analysis (rule manhattan): the only workflow module of the
genotype path that imports matplotlib, so the normalize, fit and moderate jobs do not."""

from __future__ import annotations

import json
from pathlib import Path

from stacklm.io.outputs import read_table
from stacklm.plots.manhattan import plot_manhattan
from stacklm.plots.style import Labels, labelled


def manhattan_step(results_path, summary_path, png_path, data_path, analysis_name: str = ""):
    """The Manhattan plot of an analysis from its results table (rule manhattan)."""
    summary = json.loads(Path(summary_path).read_text())
    columns = ["feature_id", "chromosome", "position", "p_value"]
    results = read_table(results_path, columns)
    test = ", ".join(summary.get("test") or [])
    with labelled(Labels(analysis=analysis_name)):
        plot_manhattan(
            results,
            png_path,
            data_path,
            title=f"{summary.get('test_statistic', 'test')} of {test}; "
            f"λGC = {summary.get('lambda_gc', float('nan')):.3f}",
        )

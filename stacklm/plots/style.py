"""Plot styles, labels and file names."""

from __future__ import annotations

import matplotlib

from stacklm.design.factors import is_factor
from stacklm.genotype.inputs import is_genotype_config
from stacklm.plots.names import ANNOTATION_PLOTS, PLOTS
from stacklm.spec import DesignInfo

matplotlib.use("Agg")

import contextlib
import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd  # noqa: E402

DPI = 150

#: from this many features on, scatter plots draw an image of the features per bin instead of points
DENSITY_MIN_FEATURES = 20_000
#: bins of that image: (x, y); ~3 x 3 pixels each in a panel of 3.5 x 2.9 inches at 150 dpi
DENSITY_GRID = (180, 140)
#: highlighted (significant) features are drawn as points up to this many, above as red bins
HIGHLIGHT_MAX_POINTS = 20_000

SIGNIFICANT = "#d62728"
NEUTRAL = "#4d4d4d"
TREND = "#ff7f0e"
PRIOR = "#1f77b4"

MATRIX_LABELS = {
    "input": "input (normalized values)",
    "fitted": "fitted values",
    "residuals": "residuals",
    "corrected": "values with the adjustment effects removed (removeBatchEffect)",
}

#: a numeric annotation column with at most this many distinct values is summarised per value
ANNOTATION_MAX_VALUES = 12


@dataclass(frozen=True)
class Labels:
    """What the plots call things: the analysis (a figure title prefix), the scale of the values
    and of the estimates (from ``input_scale`` and ``normalize.log2``), the design columns that are
    slopes of a numeric covariate (``per_unit``: column -> covariate) and the FDR method."""

    analysis: str = ""
    value: str = "value"
    difference: str = "difference"
    per_unit: Mapping[str, str] = field(default_factory=dict)
    fdr_method: str = "BH"

    def estimate(self, name: str) -> str:
        """Axis label of the estimates of a coefficient or contrast, with their unit."""
        if name in self.per_unit:
            return f"{name} ({self.difference} per unit of {self.per_unit[name]})"
        return f"{name} ({self.difference})"

    @property
    def average(self) -> str:
        return f"average {self.value} (Amean)"


_LABELS: contextvars.ContextVar[Labels | None] = contextvars.ContextVar(
    "stacklm_plot_labels", default=None
)


def _labels() -> Labels:
    return _LABELS.get() or Labels()


@contextlib.contextmanager
def labelled(labels: Labels):
    """Draw the plots inside the block with ``labels`` (analysis name, units)."""
    token = _LABELS.set(labels)
    try:
        yield labels
    finally:
        _LABELS.reset(token)


def scale_labels(config: Mapping) -> tuple[str, str]:
    """(values, differences) as the plots name them, from the run's config: ``input_scale`` and
    ``normalize.log2`` say whether the values are M-values, dosages, log2(x + offset) or log2
    expression (``input_scale: expression`` takes the values as given, which limma expects to be
    log expression: their differences are log2 fold changes)."""
    kind = config.get("input_scale", "expression")
    norm = config.get("normalize") or {}
    if kind == "beta":
        return "M-value", "M-value difference"
    if kind == "dosage" or is_genotype_config(config):  # PLINK input: allele counts
        return "dosage", "dosage difference"
    if kind == "counts":  # voom's (or edgeR's) log-CPM is what the analyses fit
        return "log2 CPM", "log2 fold change"
    if norm.get("log2"):
        offset = float(norm.get("offset", 1))
        return f"log2(value + {offset:g})", "log2 fold change"
    return "log2 expression", "log2 fold change"


def analysis_labels(name: str, summary: Mapping, info: DesignInfo | None = None,
                    sheet: pd.DataFrame | None = None) -> Labels:  # fmt: skip
    """:class:`Labels` of one analysis from its summary.json (the run's config, FDR method), its
    :class:`DesignInfo` and the sample sheet (which formula variables are numeric covariates)."""
    value, difference = scale_labels(summary.get("config") or {})
    numeric = set(info.numeric_covariates) if info is not None else set()
    if sheet is not None:
        numeric = {v for v in numeric if v in sheet.columns and not is_factor(sheet[v])}
    per_unit = {}
    for column in summary.get("design_columns") or []:
        slopes = [part for part in str(column).split(":") if part in numeric]
        if slopes:
            per_unit[str(column)] = " × ".join(slopes)
    return Labels(name, value, difference, per_unit, str(summary.get("fdr_method") or "BH"))


def plot_files(stem: str, annotation: bool = False) -> list[str]:
    """File names (PNG and data) of every plot, for the workflow's outputs."""
    plots = dict(PLOTS, **(ANNOTATION_PLOTS if annotation else {}))
    return [f"{name}{ext}" for name, suffix in plots.items() for ext in (".png", suffix)]

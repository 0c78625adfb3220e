"""limma's ``voomWithQualityWeights`` (limma 3.63.2): voom observation weights combined with
sample quality weights from ``arrayWeights``.

limma's steps, followed exactly (no library offers them; the parts are this package's ports of
:func:`stacklm.limma.voom.voom` and :func:`stacklm.limma.arrayweights.array_weights`):

1. ``v = voom(counts, design, lib.size, span, ...)``;
2. ``aw = arrayWeights(v, design, method, maxiter, tol, var.design, var.group)``, on ``v$E`` with
   voom's weights as observation weights (so with the default ``method = "genebygene"`` this is the
   sequential gene-by-gene pass; ``"reml"`` the REML iteration with prior weights);
3. ``v = voom(counts, design, weights = aw, ...)``: the lowess trend refitted from the fits weighted
   by the sample weights;
4. ``aw = arrayWeights(v, ...)`` again, on the new voom weights;
5. ``v$weights = t(aw * t(v$weights))`` (each column times its sample weight) and
   ``v$targets$sample.weights = aw``.

The sample weights are global over features (each ``arrayWeights`` needs all features' values and
voom weights at once), so this runs on the whole filtered matrix in one job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stacklm.limma.arrayweights import array_weights
from stacklm.limma.voom import VoomResult, voom

__all__ = ["VoomQualityResult", "voom_with_quality_weights"]


@dataclass
class VoomQualityResult(VoomResult):
    """voom's result (``E``, ``weights``, trend, ...) where ``weights`` are the voom weights times
    the sample weights, plus ``sample_weights`` (limma's ``v$targets$sample.weights``)."""

    sample_weights: np.ndarray | None = None


def voom_with_quality_weights(
    counts,
    design=None,
    lib_size=None,
    norm_factors=None,
    method: str = "genebygene",
    maxiter: int = 50,
    tol: float = 1e-5,
    var_design=None,
    var_group=None,
    span: float = 0.5,
    adaptive_span: bool = False,
    block=None,
    correlation=None,
    trace: bool = False,
    save_plot: bool = True,
) -> VoomQualityResult:
    """limma's ``voomWithQualityWeights(counts, design, lib.size, method = "genebygene", maxiter,
    tol, var.design, var.group, span, adaptive.span, ...)`` for a count matrix (features x samples).

    ``lib_size`` / ``norm_factors`` as :func:`stacklm.limma.voom.voom` (what voom takes from a
    DGEList after ``calcNormFactors``: ``lib.size * norm.factors``).  ``block`` and ``correlation``
    go to both voom calls, as R's ``...``.  ``method``, ``maxiter``, ``tol``, ``var_design``,
    ``var_group`` go to both :func:`~stacklm.limma.arrayweights.array_weights` calls (``trace``
    to the second only, as limma).  Returns the second voom's ``E`` and trend, ``weights`` = its
    voom weights times the sample weights (column by column), and ``sample_weights``.
    """
    voom_args = dict(
        lib_size=lib_size,
        norm_factors=norm_factors,
        span=span,
        adaptive_span=adaptive_span,
        block=block,
        correlation=correlation,
    )
    aw_args = dict(
        method=method, maxiter=maxiter, tol=tol, var_design=var_design, var_group=var_group
    )
    v = voom(counts, design, save_plot=False, **voom_args)
    aw = array_weights(v.E, design, weights=v.weights, **aw_args)
    v = voom(counts, design, weights=aw, save_plot=save_plot, **voom_args)
    aw = array_weights(v.E, design, weights=v.weights, trace=trace, **aw_args)
    return VoomQualityResult(
        E=v.E,
        weights=v.weights * aw,
        design=v.design,
        lib_size=v.lib_size,
        span=v.span,
        trend=v.trend,
        sx=v.sx,
        sy=v.sy,
        sample_weights=aw,
    )

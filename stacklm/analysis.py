"""One analysis from a sample sheet and settings to the results table: the functions the workflow's
steps call, usable in one go from a notebook (:func:`run_analysis`) with the same numbers.

An analysis is a dict with the keys of the workflow config's ``analyses.<name>`` entry::

    {"formula": "~ geography + sex + batch + age",
     "levels": {"geography": ["Agadir", "Desert", "Mountain"], "batch": [1, 2, 3, 4]},
     "subset": None, "contrasts": {}, "test": ["geographyDesert", "geographyMountain"],
     "moderation": {"trend": False, "robust": False}}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stacklm.design.contrasts import make_contrasts
from stacklm.design.formula import DesignError, design_matrix
from stacklm.io.samplesheet import SampleSheetError, evaluate_subset
from stacklm.limma.contrasts import contrasts_fit
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.ftest import f_test_df1, moderated_f
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.marraylm import LinearModelFit
from stacklm.multiple_testing.inflation import genomic_inflation
from stacklm.multiple_testing.padjust import p_adjust
from stacklm.multiple_testing.qvalue import qvalue

SUMMARY_COLUMNS = [
    "average", "sigma", "df_residual", "s2_prior", "df_prior", "s2_post", "df_total",
]  # fmt: skip
PER_COEFFICIENT = ["estimate", "stdev_unscaled", "t", "p", "fdr", "lods"]
TEST_COLUMNS = ["statistic", "p_value", "fdr", "qvalue", "lfdr"]


def analysis_samples(
    sheet: pd.DataFrame, matrix_samples: Sequence[str], analysis: Mapping
) -> pd.DataFrame:
    """The sample sheet rows of an analysis, in matrix column order, after ``subset``."""
    rows = sheet.loc[[str(s) for s in matrix_samples]]
    subset = analysis.get("subset")
    if subset:
        mask = evaluate_subset(rows, subset)
        rows = rows.loc[mask.to_numpy()]
        if rows.empty:
            raise SampleSheetError(f"subset {subset!r} selects no samples")
    return rows


def analysis_design(sheet: pd.DataFrame, matrix_samples: Sequence[str], analysis: Mapping):
    """Design of an analysis: ``(design, dropped)`` where design is indexed by sample id (matrix order)
    and ``dropped`` lists samples removed for a missing formula variable (with a warning, as R)."""
    rows = analysis_samples(sheet, matrix_samples, analysis)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = design_matrix(rows, analysis["formula"], analysis.get("levels") or {})
    for w in caught:
        warnings.warn(str(w.message), stacklevel=2)
    dropped = [str(s) for s in rows.index if s not in set(design.index)]
    return design, dropped


def output_names(design_columns: Sequence[str], contrasts: Mapping[str, str] | None) -> list[str]:
    """Coefficients and contrasts reported in the results: every design column but the intercept,
    then the named contrasts."""
    names = [c for c in design_columns if c != "Intercept"]
    clash = [c for c in (contrasts or {}) if c in design_columns]
    if clash:
        raise DesignError(
            f"contrast name(s) {', '.join(clash)} clash with design columns; rename them"
        )
    return names + list(contrasts or {})


def check_test(
    test: Sequence[str] | str, design_columns: Sequence[str], contrasts: Mapping | None
) -> list[str]:
    """The tested coefficients/contrasts, checked to exist (the error lists the available ones)."""
    if isinstance(test, str):
        test = [test]
    test = list(test or [])
    if not test:
        raise DesignError(
            "'test' is empty: name one coefficient or contrast (or several for an F-test)"
        )
    available = output_names(design_columns, contrasts)
    unknown = [t for t in test if t not in available]
    if unknown:
        raise DesignError(
            f"'test' names {', '.join(map(repr, unknown))}, not a coefficient or contrast of this "
            f"analysis; available: {', '.join(available)}"
        )
    return test


def reporting_fit(fit: LinearModelFit, contrasts: Mapping[str, str] | None) -> LinearModelFit:
    """The fit re-expressed on the reported columns: the non-intercept coefficients, then the
    contrasts (one ``contrasts_fit`` so the F-test can combine coefficients and contrasts)."""
    if not contrasts:
        return fit
    names = output_names(fit.coef_names, contrasts)
    keep = [c for c in fit.coef_names if c != "Intercept"]
    identity = pd.DataFrame(
        np.eye(len(fit.coef_names)), index=fit.coef_names, columns=fit.coef_names
    )[keep]
    C = pd.concat([identity, make_contrasts(contrasts, fit.coef_names)], axis=1)
    return contrasts_fit(fit, C.to_numpy(), names=names)


def moderate_and_test(
    fit: LinearModelFit,
    contrasts: Mapping[str, str] | None,
    test: Sequence[str],
    moderation: Mapping | None = None,
    fdr_method: str = "BH",
    alpha: float = 0.05,
):
    """Moderation, per-column tests, the analysis test, FDR and q-values over all features at once.

    Returns ``(table, stats)``: the results table (the workflow's ``results.tsv.gz`` columns) and a
    dict of summary numbers (priors, pi0, λGC, significant count).
    """
    moderation = dict(moderation or {})
    design_columns = list(fit.coef_names)
    test = check_test(test, design_columns, contrasts)
    names = output_names(design_columns, contrasts)
    fit = reporting_fit(fit, contrasts)
    eb = e_bayes(
        fit,
        trend=bool(moderation.get("trend", False)),
        robust=bool(moderation.get("robust", False)),
    )
    g = eb.n_features
    cols: dict[str, np.ndarray] = {
        "feature_id": np.asarray(eb.feature_ids).astype(str),
        "average": eb.amean,
        "sigma": eb.sigma,
        "df_residual": eb.df_residual,
        "s2_prior": np.broadcast_to(np.asarray(eb.s2_prior, dtype=float), (g,)),
        "df_prior": np.broadcast_to(np.asarray(eb.df_prior, dtype=float), (g,)),
        "s2_post": eb.s2_post,
        "df_total": eb.df_total,
    }
    for name in names:
        j = eb.coef_names.index(name)
        cols[f"estimate_{name}"] = eb.coefficients[:, j]
        cols[f"stdev_unscaled_{name}"] = eb.stdev_unscaled[:, j]
        cols[f"t_{name}"] = eb.t[:, j]
        cols[f"p_{name}"] = eb.p_value[:, j]
        cols[f"fdr_{name}"] = p_adjust(eb.p_value[:, j], fdr_method)
        cols[f"lods_{name}"] = eb.lods[:, j]
    if len(test) == 1:
        j = eb.coef_names.index(test[0])
        statistic, p_value = eb.t[:, j], eb.p_value[:, j]
    else:
        statistic, p_value = moderated_f(eb, test)
    df1 = f_test_df1(eb, test)
    cols["statistic"] = statistic
    cols["p_value"] = p_value
    cols["fdr"] = p_adjust(p_value, fdr_method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = qvalue(p_value)
    for w in caught:
        warnings.warn(f"q-values: {w.message}", stacklevel=2)
    cols["qvalue"] = q.qvalues
    cols["lfdr"] = q.lfdr
    table = pd.DataFrame(cols)
    s2p = np.asarray(eb.s2_prior, dtype=float)
    d0 = np.asarray(eb.df_prior, dtype=float)
    stats = {
        "n_features": int(g),
        "s2_prior": float(s2p) if s2p.ndim == 0 else float(np.nanmedian(s2p)),
        "s2_prior_per_feature": bool(s2p.ndim > 0),
        "df_prior": float(d0) if d0.ndim == 0 else float(np.nanmedian(d0)),
        "df_prior_per_feature": bool(d0.ndim > 0),
        "pi0": float(q.pi0),
        "alpha": float(alpha),
        "fdr_method": fdr_method,
        "n_significant": int(np.sum(cols["fdr"] <= alpha)),
        "lambda_gc": float(genomic_inflation(p_value, df1=df1)),
        "test": list(test),
        "test_statistic": "t" if len(test) == 1 else "F",
        "test_df1": int(df1),
        "n_tested": int(np.sum(np.isfinite(p_value))),
    }
    return table, stats


def run_analysis(
    matrix: pd.DataFrame,
    sheet: pd.DataFrame,
    analysis: Mapping,
    fdr_method: str = "BH",
    alpha: float = 0.05,
    surrogate_variables: pd.DataFrame | None = None,
):
    """The whole analysis in one call, as the workflow does it in steps.

    ``matrix``: features x samples (normalized, filtered) DataFrame; ``sheet``: sample sheet indexed
    by sample id; ``analysis``: the settings dict (see module docstring).  ``surrogate_variables``
    (samples x K, indexed by sample id) are appended to the design as ``sv1..svK``.
    Returns ``(table, stats, design)``.
    """
    design, dropped = analysis_design(sheet, list(matrix.columns), analysis)
    if surrogate_variables is not None and surrogate_variables.shape[1]:
        design = design.join(surrogate_variables.loc[design.index])
    contrasts = analysis.get("contrasts") or {}
    test = check_test(analysis.get("test"), list(design.columns), contrasts)
    fit = lm_fit(matrix[design.index], design)
    table, stats = moderate_and_test(
        fit, contrasts, test, analysis.get("moderation"), fdr_method=fdr_method, alpha=alpha
    )
    stats.update(
        n_samples=int(len(design)),
        dropped_samples=dropped,
        design_columns=list(design.columns),
    )
    return table, stats, design

"""One analysis from a sample sheet and settings to the results table: the functions the workflow's
steps call, usable in one go from a notebook (:func:`run_analysis`) with the same numbers.

An analysis' settings are the workflow config's ``analyses.<name>`` entry, validated and completed
with the schema's defaults by :meth:`stacklm.spec.AnalysisSpec.from_settings`::

    {"formula": "~ geography + sex + batch + age",
     "levels": {"geography": ["Agadir", "Desert", "Mountain"], "batch": [1, 2, 3, 4]},
     "contrasts": {}, "test": ["geographyDesert", "geographyMountain"],
     "surrogate_variables": 0, "moderation": {"trend": False, "robust": False}}
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa

from stacklm.design.analysis import (  # noqa: F401  (part of this module's API)
    SV_ASSOCIATION_COLUMNS,
    analysis_design,
    analysis_samples,
    check_test,
    no_surrogate_variables,
    null_design_columns,
    output_names,
)
from stacklm.design.contrasts import make_contrasts
from stacklm.limma.contrasts import contrasts_fit
from stacklm.limma.decidetests import decide_tests, summary_decide_tests
from stacklm.limma.ebayes import e_bayes
from stacklm.limma.ftest import f_test_df1, moderated_f
from stacklm.limma.lmfit import lm_fit
from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.toptableextras import confint_columns, ordinary_t, top_table_order
from stacklm.limma.treat import treat
from stacklm.multiple_testing.inflation import genomic_inflation
from stacklm.multiple_testing.padjust import p_adjust
from stacklm.multiple_testing.qvalue import qvalue
from stacklm.spec import AnalysisSpec, DesignInfo
from stacklm.threads import executor
from stacklm.workflow.config import validate_analysis_part

SUMMARY_COLUMNS = [
    "average", "sigma", "df_residual", "s2_prior", "df_prior", "s2_post", "df_total",
]  # fmt: skip
PER_COEFFICIENT = ["estimate", "stdev_unscaled", "t", "p", "fdr", "lods"]
TEST_COLUMNS = ["statistic", "p_value", "fdr", "qvalue", "lfdr"]


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


def ordinary_fit(fit: LinearModelFit) -> LinearModelFit:
    """The fit with ordinary least-squares statistics where ``e_bayes`` puts moderated ones
    (``moderation.method: none``): t = coef / (stdev.unscaled * sigma) on df.residual, no prior
    (df.prior 0, s2.post = sigma^2), no B-statistic; the F then uses the unmoderated variances."""
    t, p = ordinary_t(fit)
    g = fit.n_features
    s2 = np.asarray(fit.sigma, dtype=np.float64) ** 2
    return fit.replace(
        t=t,
        p_value=p,
        lods=np.full_like(t, np.nan),
        s2_prior=np.full(g, np.nan),
        df_prior=0.0,
        s2_post=s2,
        df_total=np.asarray(fit.df_residual, dtype=np.float64),
        var_prior=None,
    )


def moderate_and_test(
    fit: LinearModelFit,
    contrasts: Mapping[str, str] | None,
    test: Sequence[str],
    moderation: Mapping | None = None,
    fdr_method: str = "BH",
    alpha: float = 0.05,
    threshold_fc: float | None = None,
    decide: Mapping | None = None,
    confidence_level: float = 0.95,
    threads: int = 1,
):
    """Moderation, per-column tests, the analysis test, FDR and q-values over all features at once:
    :func:`moderate_columns` as a DataFrame (:func:`columns_frame`).

    Returns ``(table, stats, fit)``: the results table (the workflow's results columns, input
    order), a dict of summary numbers (priors, pi0, λGC, significant count, decisions) and the
    moderated fit of the reported columns.
    """
    cols, stats, eb = moderate_columns(
        fit,
        contrasts,
        test,
        moderation,
        fdr_method=fdr_method,
        alpha=alpha,
        threshold_fc=threshold_fc,
        decide=decide,
        confidence_level=confidence_level,
        threads=threads,
    )
    return columns_frame(cols, threads=threads), stats, eb


def moderate_columns(
    fit: LinearModelFit,
    contrasts: Mapping[str, str] | None,
    test: Sequence[str],
    moderation: Mapping | None = None,
    fdr_method: str = "BH",
    alpha: float = 0.05,
    threshold_fc: float | None = None,
    decide: Mapping | None = None,
    confidence_level: float = 0.95,
    threads: int = 1,
):
    """Moderation, per-column tests, the analysis test, FDR and q-values over all features at once.

    ``moderation``: ``method`` (``"ebayes"``: limma's eBayes; ``"none"``: ordinary least-squares
    statistics), ``trend``, ``robust``, ``legacy`` (True: the prior of limma <= 3.60 when residual
    df differ; False: limma >= 3.62's fitFDistUnequalDF1).  Every reported column also gets its
    ordinary t and p (``t_ordinary_<c>``, ``p_ordinary_<c>``), topTable's confidence interval at
    ``confidence_level`` (``ci_low_<c>``, ``ci_high_<c>``) and decideTests' call at ``alpha``
    (``decision_<c>``: -1, 0, 1; ``decide``: ``method`` separate / global / nestedF, ``lfc``).
    ``threshold_fc``: limma's ``treat(fc=)`` per column (``t_treat_<c>``, ``p_treat_<c>``,
    ``fdr_treat_<c>``); the analysis test and its F are not thresholded.  ``threads``: how many
    of the per-column statistics are computed side by side (the numbers do not depend on it).

    Returns ``(columns, stats, fit)``: the results table's columns (name -> 1-D array, in the
    workflow's column order: numpy arrays, the feature ids an Arrow string array; for
    :func:`stacklm.io.outputs.arrow_columns` or :func:`columns_frame`), a dict of summary numbers
    (priors, pi0, λGC, significant count, decisions) and the moderated fit of the reported columns
    (its ``F`` over all coefficients only when the test is over all of them, as topTable reads it
    then; None otherwise).
    """
    moderation = validate_analysis_part("moderation", moderation)  # the schema's defaults
    decide = validate_analysis_part("decide", decide)
    method = moderation["method"]
    legacy = True if moderation["legacy"] else None
    trend = bool(moderation["trend"])
    robust = bool(moderation["robust"])
    design_columns = list(fit.coef_names)
    test = check_test(test, design_columns, contrasts)
    names = output_names(design_columns, contrasts)
    fit = reporting_fit(fit, contrasts)
    names_j = [fit.coef_names.index(name) for name in names]
    decide_method = decide["method"]
    decide_lfc = float(decide["lfc"])
    # eBayes' F over all the fit's coefficients is read only where the test is over all of them
    # (topTable's order reads it then: top_rows)
    all_f = len(set(test)) >= len(fit.coef_names) > 1
    # the per-column statistics are independent of each other: with threads > 1 they run side by
    # side with eBayes and the analysis test (numpy's sorts and ufuncs release the GIL), each
    # computed exactly as alone
    with executor(threads) as pool:
        # the ordinary t needs no moderation: it runs while eBayes does (the same arrays)
        ordinary_job = None if method == "none" else pool.submit(_ordinary_columns, fit, names_j)
        # the fit's columns, each copied once into its own memory for the results table
        fit_columns = pool.submit(_column_copies, (fit.coefficients, fit.stdev_unscaled), names_j)
        ids_job = pool.submit(_string_array, fit.feature_ids)
        if method == "none":
            eb = ordinary_fit(fit)
        else:
            eb = e_bayes(fit, trend=trend, robust=robust, legacy=legacy, f_test=all_f)
        g = eb.n_features
        eb_columns = pool.submit(_column_copies, (eb.t, eb.p_value, eb.lods), names_j)
        fdr_jobs = [pool.submit(p_adjust, eb.p_value[:, j], fdr_method) for j in names_j]
        ci_job = pool.submit(_confint_columns, eb, confidence_level, names_j)
        treat_job = None
        if threshold_fc is not None:
            treat_job = pool.submit(
                _treat_columns, fit, threshold_fc, trend, robust, legacy, names_j, fdr_method
            )
        # meanwhile, in this thread: the analysis test (a column's t or the F), its FDR and the
        # q-values (their warnings are caught here)
        statistic, p_value, fdr, df1 = _analysis_test(eb, test, fdr_method)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            q = qvalue(p_value)
        fdrs = [job.result() for job in fdr_jobs]
        # decideTests on the reported columns (the intercept is not a test); "separate" adjusts
        # each column as fdr_<c> already is
        decisions = decide_tests(
            eb,
            method=decide_method,
            adjust_method=fdr_method,
            p_value=alpha,
            lfc=decide_lfc,
            coefs=names,
            adjusted_p=fdrs if decide_method == "separate" else None,
        )
        t_eb, p_eb, lods = eb_columns.result()
        # the statistics are the ordinary ones already with method none (ordinary_fit)
        t_ord, p_ord = (t_eb, p_eb) if ordinary_job is None else ordinary_job.result()
        ci_low, ci_high = ci_job.result()
        treated = None if treat_job is None else treat_job.result()  # t, p, FDRs, log2 fc
    for w in caught:
        warnings.warn(f"q-values: {w.message}", stacklevel=2)
    cols: dict[str, np.ndarray | pa.Array] = {
        "feature_id": ids_job.result(),
        "average": eb.amean,
        "sigma": eb.sigma,
        "df_residual": eb.df_residual,
        "s2_prior": np.broadcast_to(np.asarray(eb.s2_prior, dtype=float), (g,)),
        "df_prior": np.broadcast_to(np.asarray(eb.df_prior, dtype=float), (g,)),
        "s2_post": eb.s2_post,
        "df_total": eb.df_total,
    }
    estimates, stdev_unscaled = fit_columns.result()
    for k, name in enumerate(names):
        cols[f"estimate_{name}"] = estimates[k]
        cols[f"stdev_unscaled_{name}"] = stdev_unscaled[k]
        cols[f"t_{name}"] = t_eb[k]
        cols[f"p_{name}"] = p_eb[k]
        cols[f"fdr_{name}"] = fdrs[k]
        cols[f"lods_{name}"] = lods[k]
        cols[f"t_ordinary_{name}"] = t_ord[k]
        cols[f"p_ordinary_{name}"] = p_ord[k]
        cols[f"ci_low_{name}"] = ci_low[k]
        cols[f"ci_high_{name}"] = ci_high[k]
        cols[f"decision_{name}"] = decisions[:, k]
        if treated is not None:
            cols[f"t_treat_{name}"] = treated[0][:, k]
            cols[f"p_treat_{name}"] = treated[1][:, k]
            cols[f"fdr_treat_{name}"] = treated[2][k]
    cols["statistic"] = statistic
    cols["p_value"] = p_value
    cols["fdr"] = fdr
    cols["qvalue"] = q.qvalues
    cols["lfdr"] = q.lfdr
    s2p = np.asarray(eb.s2_prior, dtype=float)
    d0 = np.asarray(eb.df_prior, dtype=float)
    counts = summary_decide_tests(decisions, names)
    statistic_name = "t" if len(test) == 1 else "F"
    stats = {
        "n_features": int(g),
        "moderation": {
            "method": method,
            "trend": trend,
            "robust": robust,
            "legacy": bool(moderation["legacy"]),
            "limma": "3.54.1 (legacy prior)" if legacy else "3.63.2",
        },
        "s2_prior": float(s2p) if s2p.ndim == 0 else _median_or_nan(s2p),
        "s2_prior_per_feature": bool(s2p.ndim > 0),
        "df_prior": float(d0) if d0.ndim == 0 else float(np.nanmedian(d0)),
        "df_prior_per_feature": bool(d0.ndim > 0),
        "pi0": float(q.pi0),
        "alpha": float(alpha),
        "fdr_method": fdr_method,
        "n_significant": int(np.sum(cols["fdr"] <= alpha)),
        "lambda_gc": float(genomic_inflation(p_value, df1=df1)),
        "test": list(test),
        "test_statistic": statistic_name if method != "none" else f"ordinary {statistic_name}",
        "test_df1": int(df1),
        "n_tested": int(np.sum(np.isfinite(p_value))),
        "confidence_level": float(confidence_level),
        "decide": {
            "method": decide_method,
            "lfc": decide_lfc,
            "p_value": float(alpha),
            "adjust_method": fdr_method,
            "counts": {n: {k: int(v) for k, v in counts[n].items()} for n in names},
        },
        "treat": None
        if treated is None
        else {
            "fc": float(threshold_fc),
            "lfc": float(treated[3]),
            "n_significant": {n: int(np.sum(cols[f"fdr_treat_{n}"] <= alpha)) for n in names},
            "note": "per coefficient; the analysis test (statistic, p_value, fdr) is not thresholded",
        },
    }
    return cols, stats, eb


def _column_copies(matrices, columns) -> list[list[np.ndarray]]:
    """``[[np.ascontiguousarray(m[:, j]) for j in columns] for m in matrices]``: columns of the
    matrices each in contiguous memory, as the results table stores them; a column of a
    column-major matrix (the merged fit of :func:`stacklm.limma.fitstore.load_fits` with
    ``order="F"``, e_bayes' t, p and lods) is a view of it, one of a row-major matrix a copy."""
    return [[np.ascontiguousarray(m[:, j]) for j in columns] for m in matrices]


def _string_array(values) -> pa.Array:
    """Feature ids as an Arrow string array (numpy's strings converted by Arrow itself)."""
    return pa.array(np.asarray(values, dtype=str), type=pa.string())


def _ordinary_columns(fit: LinearModelFit, columns) -> list[list[np.ndarray]]:
    """The ordinary t and p (:func:`ordinary_t`) of the ``columns`` (positions), as the columns of
    its column-major arrays."""
    return _column_copies(ordinary_t(fit, columns), range(len(columns)))


def _confint_columns(fit: LinearModelFit, level: float, columns) -> list[list[np.ndarray]]:
    """topTable's confidence limits (:func:`confint_columns`) of the ``columns`` (positions), as
    the columns of its column-major arrays."""
    return _column_copies(confint_columns(fit, level, columns), range(len(columns)))


def _analysis_test(eb: LinearModelFit, test: Sequence[str], fdr_method: str):
    """The analysis test: one column's moderated t, or the moderated F over several; its p-values,
    their adjustment and the F's numerator df."""
    if len(test) == 1:
        j = eb.coef_names.index(test[0])
        statistic, p_value = eb.t[:, j], eb.p_value[:, j]
    else:
        statistic, p_value = moderated_f(eb, test)
    return statistic, p_value, p_adjust(p_value, fdr_method), f_test_df1(eb, test)


def _treat_columns(fit, fc, trend, robust, legacy, columns, fdr_method):
    """limma's ``treat(fit, fc)`` on the reported ``columns`` (positions): t, p (G x k), each
    column's adjusted p and the log2 threshold."""
    treated = treat(fit, fc=fc, trend=trend, robust=robust, legacy=legacy)
    p = treated.p_value[:, columns]
    fdrs = [p_adjust(p[:, k], fdr_method) for k in range(p.shape[1])]
    return treated.t[:, columns], p, fdrs, treated.extra["treat_lfc"]


def columns_frame(cols: dict, threads: int = 1) -> pd.DataFrame:
    """A DataFrame of 1-D columns, one block per column: ``pd.DataFrame(dict)`` would stack the
    55-odd float columns into one 2-D block, a copy that costs about a second at 10^6 features.
    Each column is copied once into its own contiguous array (most are strided views of the fit's
    matrices) and handed over through Arrow (``split_blocks``: no consolidation)."""

    def column(values):
        if isinstance(values, pa.Array):
            return values
        values = np.asarray(values)
        if values.dtype.kind == "U":  # Arrow converts numpy's UTF-32 itself
            return pa.array(values, type=pa.string())
        if values.dtype.kind == "S":
            return pa.array(values.tolist(), type=pa.string())
        return pa.array(np.ascontiguousarray(values))

    with executor(threads) as pool:
        arrays = dict(zip(cols, pool.map(column, cols.values()), strict=True))
    return pa.table(arrays).to_pandas(split_blocks=True, self_destruct=True)


def _median_or_nan(values: np.ndarray) -> float:
    """The median of the finite values (NaN when there is none: no prior with method none)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def top_table(
    table: pd.DataFrame, fit: LinearModelFit, test: Sequence[str], alpha: float, minimum: int = 100
) -> pd.DataFrame:
    """The results rows with ``fdr <= alpha`` (at least the best ``minimum``), in the order of limma's
    ``topTable(fit, coef = test, sort.by = "P")`` (for several columns topTable orders by the F
    p-value; ties keep input order, as R's ``order``)."""
    rows = top_rows(
        fit,
        test,
        table["p_value"].to_numpy(dtype=float),
        table["fdr"].to_numpy(dtype=float),
        alpha,
        minimum,
    )
    return table.iloc[rows].reset_index(drop=True)


def top_rows(
    fit: LinearModelFit,
    test: Sequence[str],
    p_value: np.ndarray,
    fdr: np.ndarray,
    alpha: float,
    minimum: int = 100,
) -> np.ndarray:
    """The rows (0-based positions, in order) of :func:`top_table`: those with ``fdr <= alpha``
    (at least the best ``minimum`` with a p-value) in the order of limma's ``topTable(fit, coef =
    test, sort.by = "P")``, ties in input order.

    That order sorts the analysis test's p-values (``p_value``: one column's moderated t p, or the
    F p that topTable recomputes on ``fit[, test]`` as :func:`moderate_columns` does), so only
    the rows at or below the n-th smallest p are sorted (stably, in input order: the same rows as
    a sort of all).  A test of every coefficient of the fit, where topTable reads the fit's own F
    (``eBayes``'s, without the chi-square switch), takes limma's order from
    :func:`~stacklm.limma.toptableextras.top_table_order`."""
    p_value = np.asarray(p_value, dtype=np.float64)
    finite = np.isfinite(p_value)
    n_finite = int(np.count_nonzero(finite))
    n = max(int(np.count_nonzero(np.asarray(fdr) <= alpha)), min(minimum, n_finite))
    test = list(test)
    if len(test) > 1 and (len(set(test)) < len(test) or len(test) >= len(fit.coef_names)):
        order = top_table_order(fit, coef=test, sort_by="P")
        return order[finite[order]][:n]
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    kth = np.partition(p_value[finite], n - 1)[n - 1]
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero(p_value <= kth)  # in input order; NaN is never <= kth
    return candidates[np.argsort(p_value[candidates], kind="stable")][:n]


def estimate_surrogate_variables(
    values: np.ndarray,
    design: pd.DataFrame,
    info: DesignInfo,
    spec: AnalysisSpec,
    sheet: pd.DataFrame,
    log: logging.Logger | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Surrogate variables of an analysis with sva, on the complete features (rows without a missing
    value) of ``values`` (features x the design's samples, in design order): the number from
    sva's ``num.sv`` when ``surrogate_variables: auto``.  Returns the SV table (indexed by sample id,
    ``sv1..svK``) and the SV-by-covariate association table.  With no SVs requested nothing is
    computed."""
    # here, not at the top: the moderate job imports this module and needs none of them
    from stacklm.diagnostics.associations import covariate_table
    from stacklm.sva.associations import sv_associations
    from stacklm.sva.irwsva import sva
    from stacklm.sva.numsv import num_sv

    samples = [str(s) for s in design.index]
    index = pd.Index(samples, name="sample_id")
    settings = spec.surrogate
    if not settings.wanted:
        return no_surrogate_variables(samples)
    Y = np.asarray(values, dtype=np.float64)
    complete = ~np.isnan(Y).any(axis=1)
    Y = Y[complete]
    if log:
        log.info("surrogate variables from %d complete features of %d", Y.shape[0], len(complete))
    mod = design.to_numpy(dtype=np.float64)
    mod0 = design[list(info.null_design_columns)].to_numpy(dtype=np.float64)
    if settings.requested == "auto":
        n_sv = num_sv(Y, mod, method=settings.method, seed=settings.seed)
        if log:
            log.info(
                "num.sv (%s, seed %d) estimates %d surrogate variables",
                settings.method,
                settings.seed,
                n_sv,
            )
    else:
        n_sv = int(settings.requested)
    if n_sv > 0:
        result = sva(Y, mod, mod0, n_sv=n_sv, seed=settings.seed)
        sv_values = np.asarray(result.sv).reshape(len(samples), -1)
    else:
        sv_values = np.zeros((len(samples), 0))
    sv = pd.DataFrame(
        sv_values, index=index, columns=[f"sv{k + 1}" for k in range(sv_values.shape[1])]
    )
    if not sv.shape[1]:
        return sv, pd.DataFrame(columns=SV_ASSOCIATION_COLUMNS)
    # factors in the analysis are factors here too, and so are numeric codes (batch 1-4) the
    # design does not use as numbers: the same covariates as the PCA associations' (plots)
    covariates = covariate_table(
        sheet, samples, spec.levels_dict, numeric=list(info.numeric_covariates)
    )
    return sv, sv_associations(sv.to_numpy(), covariates)


def run_analysis(
    matrix: pd.DataFrame,
    sheet: pd.DataFrame,
    analysis: Mapping | AnalysisSpec,
    fdr_method: str = "BH",
    alpha: float = 0.05,
    surrogate_variables: pd.DataFrame | None = None,
):
    """The whole analysis in one call, as the workflow does it in steps, with the same numbers.

    ``matrix``: features x samples (normalized, filtered) DataFrame; ``sheet``: sample sheet indexed
    by sample id; ``analysis``: the settings of one analysis as in the workflow config (validated
    as the workflow validates them: unknown keys are errors naming the closest valid one; left-out
    keys get the schema's defaults), or an :class:`AnalysisSpec`.  Surrogate variables are estimated
    as the workflow does when the settings ask for them (``surrogate_variables: auto`` or N), unless
    ``surrogate_variables`` (samples x K, indexed by sample id) gives them; they are appended to the
    design as ``sv1..svK``.  Returns ``(table, stats, design)``.
    """
    spec = (
        analysis
        if isinstance(analysis, AnalysisSpec)
        else AnalysisSpec.from_settings("analysis", analysis)
    )
    design, info = analysis_design(sheet, list(matrix.columns), spec)
    contrasts = spec.contrasts_dict
    test = check_test(list(spec.test), list(design.columns), contrasts)
    if surrogate_variables is None and spec.surrogate.wanted:
        values = matrix[design.index].to_numpy(dtype=np.float64)
        surrogate_variables, _ = estimate_surrogate_variables(values, design, info, spec, sheet)
    if surrogate_variables is not None and surrogate_variables.shape[1]:
        design = design.join(surrogate_variables.loc[design.index])
    fit = lm_fit(matrix[design.index], design)
    table, stats, _ = moderate_and_test(
        fit,
        contrasts,
        test,
        asdict(spec.moderation),
        fdr_method=fdr_method,
        alpha=alpha,
        threshold_fc=spec.threshold_fc,
        decide=asdict(spec.decide),
        confidence_level=spec.confidence_level,
    )
    stats.update(
        n_samples=int(len(design)),
        dropped_samples=list(info.dropped_samples),
        design_columns=list(design.columns),
    )
    return table, stats, design

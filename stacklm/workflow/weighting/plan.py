"""Which steps a counts / weights / block analysis runs, and the checks of those settings against
the config and the sample sheet, before any job runs.  Light on imports (the Snakefile reads it
when it parses the workflow: limma's duplicateCorrelation module, and with it scipy.linalg, only
when an analysis has a block to check); the steps themselves are the other modules of
:mod:`stacklm.workflow.weighting`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from stacklm.spec import AnalysisSpec

#: normalize.method values that are edgeR calcNormFactors methods (counts only)
COUNT_NORMALIZATIONS = ("TMM", "TMMwsp", "upperquartile")


def uses_weighted_path(spec: AnalysisSpec, input_scale: str) -> bool:
    """Whether the analysis goes through the counts / weights steps (counts, sample or array
    weights, or a block); otherwise the unweighted fit of the values as stored runs unchanged."""
    return input_scale == "counts" or not spec.weighting.plain


def values_kind(spec: AnalysisSpec, input_scale: str) -> str:
    """What the fit models: ``voom`` (voom's log-CPM), ``logcpm`` (edgeR's log-CPM, prior count 2)
    or ``input`` (the stored values)."""
    if input_scale != "counts":
        return "input"
    return "logcpm" if spec.weighting.weights == "none" else "voom"


def weighting_rounds(spec: AnalysisSpec, input_scale: str) -> list[str]:
    """The rounds after setup, in order: ``voom`` (chunks give voom's trend points, then the global
    lowess trend) or ``dupcor`` (chunks give per-feature correlations, then the consensus).

    ``weights: voom`` with an estimated block correlation is the User's Guide recipe (voom,
    duplicateCorrelation, voom with block and correlation, duplicateCorrelation); with a given
    correlation voom's fit uses it (one round).  ``voom_quality`` runs whole in setup (its
    arrayWeights are global), and so do its duplicateCorrelation rounds."""
    if not uses_weighted_path(spec, input_scale):
        return []
    w = spec.weighting
    estimate = w.block is not None and w.correlation is None
    kind = values_kind(spec, input_scale)
    if kind == "voom" and w.weights == "voom":
        return ["voom", "dupcor", "voom", "dupcor"] if estimate else ["voom"]
    if kind == "voom":  # voom_quality: everything global, in setup
        return []
    return ["dupcor"] if estimate else []


def has_setup_job(spec: AnalysisSpec, input_scale: str) -> bool:
    """Whether the analysis' setup runs as a job of its own: when it has global work (the counts
    step, a missing-value check for sample weights, arrayWeights, voomWithQualityWeights) or no
    round follows it.  Otherwise (a block on continuous input whose correlation is estimated) the
    setup state is only the sheet's blocks, and the round-1 chunk jobs build it themselves."""
    w = spec.weighting
    if input_scale == "counts" or w.sample_weights is not None or w.array_weights:
        return True
    return not weighting_rounds(spec, input_scale)


def check_counts_config(config: Mapping) -> None:
    """The global settings that do not fit ``input_scale: counts`` (or need it); ValueError with
    one line naming the key and the fix."""
    counts = config.get("input_scale") == "counts"
    normalize = config.get("normalize") or {}
    method = normalize.get("method")
    filters = config.get("filter") or {}
    if counts:
        if normalize.get("log2"):
            raise ValueError(
                "normalize.log2 is true but input_scale is 'counts': voom (or edgeR's log-CPM) "
                "takes the log of the counts per million itself; set normalize.log2: false"
            )
        if method in ("quantile", "cyclicloess"):
            raise ValueError(
                f"normalize.method {method!r} is for continuous values; counts are normalized by "
                f"edgeR's calcNormFactors: use one of {', '.join(COUNT_NORMALIZATIONS)} or none"
            )
        if config.get("precision") == "float32":
            raise ValueError(
                "precision: float32 does not hold every count exactly; keep precision: float64 "
                "with input_scale: counts"
            )
        for key in ("min_average", "min_variance"):
            if filters.get(key) is not None:
                raise ValueError(
                    f"filter.{key} applies to continuous values; counts are filtered per analysis "
                    "by edgeR's filterByExpr (analyses.<name>.filter_by_expr): remove "
                    f"filter.{key}"
                )
    elif method in COUNT_NORMALIZATIONS:
        raise ValueError(
            f"normalize.method {method!r} is edgeR's calcNormFactors for read counts but "
            f"input_scale is {config.get('input_scale')!r}: set input_scale: counts, or use "
            "none, quantile or cyclicloess"
        )


def check_weighting_analysis(
    spec: AnalysisSpec, input_scale: str, sheet: pd.DataFrame, design: pd.DataFrame
) -> None:
    """An analysis' counts / weights / block settings against the input and its sample sheet rows
    (``design``'s samples); ValueError with one line naming the key and the fix."""
    counts = input_scale == "counts"
    w = spec.weighting
    if not counts:
        if spec.filter_by_expr is not None:
            raise ValueError(
                "filter_by_expr applies to input_scale: counts only; remove it (or set it false)"
            )
        if w.weights != "none":
            raise ValueError(
                f"weights: {w.weights} needs input_scale: counts (voom models read counts); "
                "use weights: none, sample_weights or array_weights for continuous values"
            )
    else:
        if spec.surrogate.wanted:
            raise ValueError(
                "surrogate_variables are not supported with input_scale: counts yet; set "
                "surrogate_variables: 0 (or add known covariates to the formula)"
            )
        if spec.export_corrected:
            raise ValueError(
                "export_corrected writes continuous values and is not supported with "
                "input_scale: counts; set export_corrected: false"
            )
        if w.weights == "voom" and w.array_weights:
            raise ValueError(
                "array_weights with weights: voom is voomWithQualityWeights: set "
                "weights: voom_quality (and array_weights: false)"
            )
        if w.weights == "voom_quality" and w.sample_weights is not None:
            raise ValueError(
                "sample_weights cannot be combined with weights: voom_quality, which estimates "
                "the sample weights itself; drop one of them"
            )
    if w.sample_weights is not None and w.array_weights:
        raise ValueError(
            "give either sample_weights (prior weights from the sample sheet) or array_weights "
            "(estimated by arrayWeights), not both"
        )
    if w.correlation is not None and w.block is None:
        raise ValueError(
            f"correlation: {w.correlation} is given without block: name the sample sheet column "
            "of the blocks (block: donor), or remove correlation"
        )
    samples = [str(s) for s in design.index]
    if w.sample_weights is not None:
        sample_weights_of(sheet, w.sample_weights, samples)
    if w.block is not None:
        labels = block_of(sheet, w.block, samples)
        import pandas as pd  # here: the fit jobs read this module and do not load pandas

        codes = pd.factorize(pd.Series(labels))[0]
        if np.bincount(codes).max() == 1:
            raise ValueError(
                f"block: column {w.block!r} has a different value for every sample of the "
                "analysis, so no two samples share a block; name the column that pairs them "
                "(e.g. the donor), or remove block"
            )
        if w.correlation is None:
            # here: every Snakemake start reads this module, and few analyses have a block
            from stacklm.limma.dupcor import block_structure_check

            reason = block_structure_check(design.to_numpy(dtype=np.float64), labels)
            if reason is not None and "encoded" in reason:
                raise ValueError(
                    f"block: {w.block!r} is already encoded in the design (the formula has it, or "
                    "a variable that follows it), so duplicateCorrelation would set the correlation "
                    f"to 0; remove {w.block!r} (or the variable) from the formula, or remove block"
                )


def sample_weights_of(sheet: pd.DataFrame, column: str, samples: Sequence[str]) -> np.ndarray:
    """The ``sample_weights`` column for ``samples``: positive finite numbers (else ValueError
    naming the sample and the value)."""
    if column not in sheet.columns:
        raise ValueError(
            f"sample_weights: column {column!r} is not in the sample sheet; columns: "
            f"{', '.join(map(str, sheet.columns))}"
        )
    import pandas as pd  # here: a sample sheet is a DataFrame, so pandas is loaded already

    values = pd.to_numeric(sheet.loc[list(samples), column], errors="coerce")
    w = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raw = sheet.loc[samples[i], column]
        raise ValueError(
            f"sample_weights: column {column!r} of the sample sheet has {raw!r} for sample "
            f"{samples[i]!r}; sample weights must be positive finite numbers"
        )
    return w


def block_of(sheet: pd.DataFrame, column: str, samples: Sequence[str]) -> list:
    """The ``block`` column for ``samples`` (its values as given: numbers stay numbers, so the
    blocks are ordered as R's factor orders them); ValueError for a missing column or value."""
    if column not in sheet.columns:
        raise ValueError(
            f"block: column {column!r} is not in the sample sheet; columns: "
            f"{', '.join(map(str, sheet.columns))}"
        )
    values = sheet.loc[list(samples), column]
    missing = values.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"block: column {column!r} of the sample sheet is missing for sample {samples[i]!r}; "
            "every sample of the analysis needs a block (e.g. its donor)"
        )
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]

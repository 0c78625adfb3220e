"""The design of one analysis from the sample sheet: its samples (``subset``), the model matrix of its
formula, what later steps need from the formula (:class:`~stacklm.spec.DesignInfo`), and the checks of
its reported columns and test.  Light to import: the config checks run it before any job."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import pandas as pd

from stacklm.design.contrasts import make_contrasts
from stacklm.design.factors import is_factor, looks_like_code
from stacklm.design.formula import DesignError, design_matrix, parse_formula
from stacklm.io.samplesheet import SampleSheetError, evaluate_subset
from stacklm.spec import AnalysisSpec, DesignInfo


def analysis_samples(
    sheet: pd.DataFrame, matrix_samples: Sequence[str], spec: AnalysisSpec
) -> pd.DataFrame:
    """The sample sheet rows of an analysis, in matrix column order, after ``subset``."""
    rows = sheet.loc[[str(s) for s in matrix_samples]]
    subset = spec.subset
    if subset:
        mask = evaluate_subset(rows, subset)
        rows = rows.loc[mask.to_numpy()]
        if rows.empty:
            raise SampleSheetError(f"subset {subset!r} selects no samples")
    return rows


def analysis_design(
    sheet: pd.DataFrame, matrix_samples: Sequence[str], spec: AnalysisSpec
) -> tuple[pd.DataFrame, DesignInfo]:
    """Design of an analysis, indexed by sample id (matrix order), and its :class:`DesignInfo`: the
    formula's variables, numeric covariates, the null design's columns (for sva) and the samples
    removed for a missing formula variable (with a warning, as R).  The formula is parsed here once;
    later steps read the :class:`DesignInfo`."""
    rows = analysis_samples(sheet, matrix_samples, spec)
    levels = spec.levels_dict
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = design_matrix(rows, spec.formula, levels)
    for w in caught:
        warnings.warn(str(w.message), stacklevel=2)
    kept = set(design.index)  # once: in the comprehension it was O(samples^2) (34 s at 5,000)
    dropped = [str(s) for s in rows.index if s not in kept]
    variables = parse_formula(spec.formula).variables
    for v in variables:
        if v not in levels and looks_like_code(rows.loc[design.index, v]):
            values = sorted(rows.loc[design.index, v].dropna().unique())
            warnings.warn(
                f"analysis {spec.name!r}: column {v!r} has {len(values)} distinct whole-number values "
                f"({', '.join(f'{x:g}' for x in values[:6])}) and is fitted as ONE numeric covariate "
                f"(a linear trend in {v}); if it codes groups (batch, plate), make it a factor by "
                f"listing it under levels ('levels: {{{v}: [{', '.join(f'{x:g}' for x in values[:6])}]}}'), "
                f"as R users write factor({v})",
                stacklevel=2,
            )
    info = DesignInfo(
        variables=tuple(variables),
        numeric_covariates=tuple(
            v for v in variables if v not in levels and not is_factor(rows[v])
        ),
        design_columns=tuple(str(c) for c in design.columns),
        null_design_columns=tuple(null_design_columns(list(design.columns), spec)),
        dropped_samples=tuple(dropped),
        n_samples=int(len(design)),
    )
    return design, info


def null_design_columns(design_columns: Sequence[str], spec: AnalysisSpec) -> list[str]:
    """sva's ``mod0``: the design columns without the tested ones (for a tested contrast, without the
    design columns it involves)."""
    tested = set()
    contrasts = spec.contrasts_dict
    for name in spec.test:
        if name in contrasts:
            weights = make_contrasts({name: contrasts[name]}, list(design_columns))[name]
            tested.update(weights.index[weights != 0])
        else:
            tested.add(name)
    return [c for c in design_columns if c not in tested]


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


#: columns of the SV-by-covariate association table (sv_associations.tsv)
SV_ASSOCIATION_COLUMNS = ["sv", "covariate", "kind", "r2", "p_value", "n"]


def no_surrogate_variables(samples: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SV table (no columns, indexed by sample id) and the empty association table of an
    analysis without surrogate variables."""
    index = pd.Index([str(s) for s in samples], name="sample_id")
    return pd.DataFrame(index=index), pd.DataFrame(columns=SV_ASSOCIATION_COLUMNS)

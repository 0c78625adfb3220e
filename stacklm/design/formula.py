"""Design matrices from model formulas, and contrast matrices from strings.

``design_matrix(samples, "~ geography + sex + batch + age", levels={...})`` builds what R's
``model.matrix`` builds for an additive formula with treatment contrasts, with R's column names
(``Intercept``, ``geographyDesert``, ``sexM``, ``batch2``, ``age``, interactions ``geographyDesert:sexM``).
Supported formula syntax: ``~ a + b``, ``a:b`` and ``a*b`` interactions, ``0``/``-1`` (no intercept),
``1``.  String, boolean and categorical columns are factors (levels sorted unless ``levels`` gives
them; the first is the reference); numeric columns are covariates unless listed in ``levels``.
Samples with a missing value in a formula variable are dropped, as R's default ``na.omit`` does,
with a warning naming them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from stacklm.design.factors import is_factor
from stacklm.limma.qrrank import aliased_columns, estimable_columns


class DesignError(ValueError):
    """A formula, level list, or sample table that cannot give a valid design."""


@dataclass
class Formula:
    intercept: bool
    terms: list[tuple[str, ...]]  # each term: tuple of variable names (interaction if > 1)

    @property
    def variables(self) -> list[str]:
        seen: list[str] = []
        for term in self.terms:
            for v in term:
                if v not in seen:
                    seen.append(v)
        return seen


_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*|`[^`]+`"


def parse_formula(formula: str) -> Formula:
    """Parse a one-sided R model formula such as ``"~ geography + sex + batch:age"``."""
    text = formula.strip()
    if not text.startswith("~"):
        raise DesignError(f"formula {formula!r} must start with '~' (e.g. '~ geography + sex')")
    body = text[1:].strip()
    if not body:
        raise DesignError(f"formula {formula!r} has no terms")
    intercept = True
    terms: list[tuple[str, ...]] = []
    # split on + and - at top level, keeping the sign
    tokens = re.findall(r"[+-]|[^+-]+", body)
    sign = "+"
    for tok in tokens:
        tok = tok.strip()
        if tok in ("+", "-"):
            sign = tok
            continue
        if not tok:
            continue
        if tok in ("0", "1"):
            if tok == "0" or sign == "-":
                intercept = False
            sign = "+"
            continue
        if sign == "-":
            raise DesignError(
                f"removing term {tok!r} with '-' is not supported in formula {formula!r}"
            )
        if "*" in tok:
            parts = [_variable_name(p, formula) for p in tok.split("*")]
            new_terms = [c for k in range(1, len(parts) + 1) for c in combinations(parts, k)]
        else:
            new_terms = [tuple(_variable_name(p, formula) for p in tok.split(":"))]
        for term in new_terms:
            if term not in terms:
                terms.append(term)
        sign = "+"
    terms.sort(key=len)  # R orders terms by interaction order
    return Formula(intercept=intercept, terms=terms)


def _variable_name(text: str, formula: str) -> str:
    name = text.strip()
    if not re.fullmatch(_NAME, name):
        raise DesignError(
            f"cannot read term {name!r} in formula {formula!r}: use column names of the sample sheet "
            "joined by '+', ':' or '*' (functions such as log() or factor() are not supported; "
            "list a numeric column under 'levels' to make it a factor)"
        )
    return name.strip("`")


def _format_level(value) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    return str(value)


def design_matrix(
    samples: pd.DataFrame,
    formula: str,
    levels: Mapping[str, Sequence] | None = None,
) -> pd.DataFrame:
    """The design matrix (samples x columns) of ``formula`` on the sample table, as R's model.matrix.

    Categorical variables use treatment contrasts against their first level.  ``levels`` fixes the
    level order of a variable (and makes a numeric column categorical).  The result's index holds
    the samples kept (rows with a missing formula variable are dropped with a warning).  A design that
    is not of full column rank is an error naming each aliased column and what it is a combination of.
    """
    levels = dict(levels or {})
    f = parse_formula(formula)
    missing_cols = [v for v in f.variables if v not in samples.columns]
    if missing_cols:
        raise DesignError(
            f"formula {formula!r} uses {', '.join(repr(m) for m in missing_cols)}, not a column of the "
            f"sample sheet; columns are: {', '.join(map(str, samples.columns))}"
        )
    unknown = [k for k in levels if k not in f.variables]
    if unknown:
        raise DesignError(
            f"'levels' names {', '.join(map(repr, unknown))}, not a variable of formula {formula!r}"
        )
    data = samples[f.variables]
    incomplete = data.isna().any(axis=1)
    if incomplete.any():
        dropped = [str(i) for i in samples.index[incomplete]]
        warnings.warn(
            f"dropping {len(dropped)} sample(s) with a missing value in a formula variable: "
            + ", ".join(dropped),
            stacklevel=2,
        )
        data = data.loc[~incomplete]
    if len(data) == 0:
        raise DesignError("no samples left with complete formula variables")

    columns: dict[str, dict[str, np.ndarray]] = {}
    for var in f.variables:
        col = data[var]
        if var in levels or is_factor(col):
            values = col.map(_format_level).astype(str).to_numpy()
            if var in levels:
                lev = [_format_level(v) for v in levels[var]]
                if len(set(lev)) != len(lev):
                    raise DesignError(f"levels of {var!r} contain duplicates: {lev}")
                extra = sorted(set(values) - set(lev))
                if extra:
                    raise DesignError(
                        f"column {var!r} has value(s) {', '.join(map(repr, extra))} not in its levels "
                        f"{lev}; add them to 'levels.{var}' or remove those samples with 'subset'"
                    )
                absent = [v for v in lev if v not in set(values)]
                if absent:
                    raise DesignError(
                        f"level(s) {', '.join(map(repr, absent))} of {var!r} listed in 'levels' do not "
                        f"occur in the samples analysed; remove them from 'levels.{var}'"
                    )
            else:
                lev = sorted(set(values), key=_natural_key)
            if len(lev) < 2:
                raise DesignError(
                    f"factor {var!r} has a single level ({lev[0]!r}) in the samples analysed; "
                    "remove it from the formula"
                )
            columns[var] = {
                f"{var}{lv}": (values == lv).astype(np.float64) for lv in lev
            }  # all levels; reference dropped below
            columns[var]["__levels__"] = np.array(lev, dtype=object)
        else:
            columns[var] = {var: col.to_numpy(dtype=np.float64)}

    out: dict[str, np.ndarray] = {}
    n = len(data)
    if f.intercept:
        out["Intercept"] = np.ones(n)
    main_effects = {t[0] for t in f.terms if len(t) == 1}
    for term in f.terms:
        parts = []
        for var in term:
            cols = dict(columns[var])
            lev = cols.pop("__levels__", None)
            if lev is not None:
                drop_reference = f.intercept or len(term) > 1 or not _first_factor(f, var, columns)
                if drop_reference:
                    cols.pop(f"{var}{lev[0]}")
            parts.append(cols)
        if len(term) > 1:
            for var in term:
                if var not in main_effects:
                    raise DesignError(
                        f"interaction {':'.join(term)} needs the main effect {var!r} in the formula too"
                    )
        combos: dict[str, np.ndarray] = {"": np.ones(n)}
        for cols in parts:
            new: dict[str, np.ndarray] = {}
            for cname, cval in cols.items():  # later factors vary slowest (R's order)
                for pname, pval in combos.items():
                    new[f"{pname}:{cname}" if pname else cname] = pval * cval
            combos = new
        out.update(combos)
    design = pd.DataFrame(out, index=data.index)
    check_full_rank(design)
    return design


def _first_factor(f: Formula, var: str, columns) -> bool:
    """Without an intercept R codes the first factor with all its levels."""
    for term in f.terms:
        if len(term) == 1 and "__levels__" in columns[term[0]]:
            return term[0] == var
    return False


def _natural_key(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def check_full_rank(design: pd.DataFrame) -> None:
    """Raise a :class:`DesignError` naming the aliased columns if the design is rank deficient."""
    X = design.to_numpy(dtype=np.float64)
    if X.shape[0] < X.shape[1]:
        raise DesignError(
            f"the design has {X.shape[1]} columns but only {X.shape[0]} samples; "
            "use fewer variables or more samples"
        )
    if estimable_columns(X).all():
        return
    alias = aliased_columns(X, [str(c) for c in design.columns])
    detail = "; ".join(
        f"{k} is {'all zero' if not v else 'a linear combination of ' + ', '.join(v)}"
        for k, v in alias.items()
    )
    raise DesignError(
        f"the design is not of full rank (confounded variables): {detail}. "
        "Remove one of the confounded variables from the formula, or merge levels"
    )


# --------------------------------------------------------------------------------------------
# contrasts
# --------------------------------------------------------------------------------------------

"""Design matrices from model formulas, as R's ``model.matrix`` with treatment contrasts.

``design_matrix(samples, "~ geography + sex + batch + age", levels={...})`` builds what R's
``model.matrix`` builds, with R's column names (``Intercept``, ``geographyDesert``, ``sexM``,
``batch2``, ``age``, interactions ``geographyDesert:sexM``) in R's order.  Supported formula syntax:
``~ a + b``, ``a:b`` and ``a*b`` interactions, ``0``/``-1`` (no intercept), ``1``; names as R writes
them (``cell.type``) or backticked (```cell type```).  String, boolean and categorical columns are
factors (the first level is the reference); numeric columns are covariates unless listed in
``levels``.  Samples with a missing value in a formula variable are dropped, as R's default
``na.omit`` does, with a warning naming them.

What formulaic does, and what stays here
----------------------------------------
`formulaic <https://matthewwardrop.github.io/formulaic/>`_ parses the formula (``*`` expansion,
the ``0`` / ``-1`` / ``1`` intercept rules, duplicate terms such as ``a:b + b:a``, terms ordered by
degree and otherwise as written, as R's ``terms``) and materializes the matrix: each factor's level
indicators, the products of interaction terms and the numeric columns.  A thin layer stays here
where formulaic does not do what R does:

- *Syntax and errors.*  formulaic also accepts calls (``log(age)``), parentheses and term removal,
  with messages about its own grammar; the supported subset is checked first, with the messages
  users see (a numeric column becomes a factor by listing it under ``levels``, not by ``factor()``).
- *Which factor of a term is coded by contrasts.*  formulaic reduces rank structurally (patsy's
  algorithm), which is not R's rule: for ``~ a + b + c + a:b:c`` it adds two-way pieces to the
  three-way term, for ``~ 0 + n + a:n`` (``n`` numeric) it drops a level of ``a`` that R keeps.
  R's rule is ported in
  :func:`_contrast_coded` (``TermCode`` in R's ``model.c``, the heuristic of Statistical Models in
  S p. 38, plus R's full coding of the first factor of the first term holding one when there is no
  intercept).  formulaic materializes full indicator coding (``ensure_full_rank=False``) and the
  reference-level columns of the contrast-coded factors are dropped: treatment contrasts against
  the first level are exactly the other levels' indicators.
- *Names and order inside interactions.*  R orders the variables of every term by their first
  appearance in the formula (``~ sex + geography + geography:sex`` gives ``sexM:geographyDesert``),
  the first varying fastest; formulaic keeps the written order and names columns
  ``geography[T.Desert]``.  formulaic is handed columns
  ``v0, v1, ...`` and level codes ``0, 1, ...`` so that its column names map back unambiguously
  whatever the sheet's names and levels; the names are R's, with ``Intercept`` for
  ``(Intercept)`` and backticked names without their backticks.
- *Level order.*  ``levels`` gives it; otherwise values that read as numbers sort numerically and
  come first, then text in code-point order (:func:`_natural_key`).  This is R's order for what the
  sheet holds: ``factor()`` of a numeric code such as batch ``1, 2, 10`` (pandas may hold such codes
  as Python numbers in an object or categorical column, or as floats ``1.0``, written ``1``)
  orders its levels numerically, and R's ``sort()`` of text in the C locale the references run in
  (``LC_COLLATE=C.UTF-8``) is code-point order.  (Text that reads as numbers, ``"1", "2", "10"``,
  also sorts numerically, where R's sort of text would give ``1, 10, 2``: ``levels`` sets any
  other order.)  formulaic would sort values as Python does.
- *Missing values* are dropped here with a warning naming the samples (formulaic drops silently);
  level checks and the rank check (:func:`check_full_rank`, naming aliased columns with R's
  ``lm.fit`` pivoting) are not formulaic's business.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stacklm.design.factors import is_factor
from stacklm.limma.qrrank import aliased_columns, estimable_columns


class DesignError(ValueError):
    """A formula, level list, or sample table that cannot give a valid design."""


@dataclass
class Formula:
    """A parsed one-sided formula: intercept, terms in R's order (by degree, then as written; the
    variables of each term in formula order) and the variables in order of first appearance."""

    intercept: bool
    terms: list[tuple[str, ...]]  # each term: tuple of variable names (interaction if > 1)
    variables: list[str]
    written: list[tuple[str, ...]] = field(default_factory=list, repr=False, compare=False)
    # ``written``: the terms with their variables as written (for the messages)


_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*|`[^`]+`"


def parse_formula(formula: str) -> Formula:
    """Parse a one-sided R model formula such as ``"~ geography + sex + batch:age"``.

    The supported subset is checked here token by token (with the errors users see); the checked
    formula, every name backticked, is then expanded by formulaic's parser."""
    text = formula.strip()
    if not text.startswith("~"):
        raise DesignError(f"formula {formula!r} must start with '~' (e.g. '~ geography + sex')")
    body = text[1:].strip()
    if not body:
        raise DesignError(f"formula {formula!r} has no terms")
    variables: list[str] = []
    pieces: list[str] = []
    sign = "+"
    for tok in re.findall(r"[+-]|[^+-]+", body):
        tok = tok.strip()
        if tok in ("+", "-"):
            sign = tok
            continue
        if not tok:
            continue
        if tok in ("0", "1"):
            pieces.append(f"{sign} {tok}")
            sign = "+"
            continue
        if sign == "-":
            raise DesignError(
                f"removing term {tok!r} with '-' is not supported in formula {formula!r}"
            )
        op = "*" if "*" in tok else ":"
        names = [_variable_name(p, formula) for p in tok.split(op)]
        for n in names:
            if n not in variables:
                variables.append(n)
        pieces.append("+ " + op.join(f"`{n}`" for n in names))
        sign = "+"
    import formulaic  # here: ~0.2 s to import, and jobs that only read designs need none of it

    parsed = formulaic.Formula(" ".join(pieces).removeprefix("+ "))
    intercept = False
    written: list[tuple[str, ...]] = []
    for term in parsed:
        names = tuple(factor.expr for factor in term.factors)
        if names == ("1",):
            intercept = True
        else:
            written.append(names)
    order = {v: i for i, v in enumerate(variables)}
    terms = [tuple(sorted(t, key=order.__getitem__)) for t in written]
    return Formula(intercept=intercept, terms=terms, variables=variables, written=written)


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

    # formulaic sees columns v0, v1, ... and level codes 0, 1, ... (names parse back unambiguously)
    frame: dict[str, object] = {}
    factor_levels: dict[str, list[str]] = {}
    for i, var in enumerate(f.variables):
        col = data[var]
        if var in levels or is_factor(col):
            values = col.map(_format_level).astype(str).to_numpy()
            lev = factor_levels[var] = _factor_levels(var, values, levels)
            codes = pd.Index(lev).get_indexer(values)
            frame[f"v{i}"] = pd.Categorical.from_codes(codes, categories=range(len(lev)))
        else:
            frame[f"v{i}"] = col.to_numpy(dtype=np.float64)
    main_effects = {t[0] for t in f.written if len(t) == 1}
    for term in f.written:
        for var in term if len(term) > 1 else ():
            if var not in main_effects:
                raise DesignError(
                    f"interaction {':'.join(term)} needs the main effect {var!r} in the formula too"
                )

    index = {v: i for i, v in enumerate(f.variables)}
    spec = " + ".join(
        ["1" if f.intercept else "0"] + [":".join(f"v{index[v]}" for v in t) for t in f.terms]
    )
    import formulaic

    X = formulaic.model_matrix(
        formulaic.Formula(spec, _ordering="none"),
        pd.DataFrame(frame, index=data.index),
        ensure_full_rank=False,
        na_action="ignore",
        output="numpy",
    )
    contrasts = _contrast_coded(f, factor_levels)
    keep, names = [], []
    for j, column in enumerate(X.model_spec.column_names):
        if column == "Intercept":
            keep.append(j)
            names.append("Intercept")
            continue
        parts = [_COLUMN.fullmatch(p) for p in column.split(":")]
        if not all(parts):
            raise RuntimeError(f"unexpected formulaic column name {column!r}")
        term = tuple(f.variables[int(m[1])] for m in parts)
        codes = [None if m[2] is None else int(m[2]) for m in parts]
        if any(c == 0 and contrasts[term][v] for v, c in zip(term, codes, strict=True)):
            continue  # reference level of a factor coded by treatment contrasts
        keep.append(j)
        names.append(
            ":".join(
                v if c is None else f"{v}{factor_levels[v][c]}"
                for v, c in zip(term, codes, strict=True)
            )
        )
    design = pd.DataFrame(np.asarray(X, dtype=np.float64)[:, keep], index=data.index, columns=names)
    check_full_rank(design)
    return design


_COLUMN = re.compile(r"v(\d+)(?:\[(\d+)\])?")  # formulaic's name of a numeric or level column


def _factor_levels(var: str, values: np.ndarray, levels: Mapping[str, Sequence]) -> list[str]:
    """The levels of a factor: ``levels[var]`` (checked against the values), else
    :func:`_natural_key` order."""
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
    return lev


def _contrast_coded(
    f: Formula, factor_levels: Mapping[str, list[str]]
) -> dict[tuple[str, ...], dict[str, bool]]:
    """For each term and variable: is it coded by contrasts (True) or by all its levels (False)?

    R's ``TermCode`` (model.c): variable ``v`` of term ``T`` is coded by contrasts when ``T`` without
    ``v`` is empty or contained in a preceding term.  Without an intercept R then codes by all its
    levels the first factor (in variable order) of the first term holding a factor
    (``modelmatrix`` in model.c).  Only factors' codes matter."""
    codes: dict[tuple[str, ...], dict[str, bool]] = {}
    for j, term in enumerate(f.terms):
        codes[term] = {}
        for v in term:
            rest = set(term) - {v}
            codes[term][v] = not rest or any(rest <= set(t) for t in f.terms[:j])
    if not f.intercept:
        for term in f.terms:
            first = next((v for v in term if v in factor_levels), None)
            if first is not None:
                codes[term][first] = False
                break
    return codes


def _natural_key(s: str):
    """Numbers first, in numeric order (R's ``factor()`` of a numeric code), then text in code-point
    order (R's ``sort()`` in the C locale)."""
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

"""Matching of labelled inputs (DataFrame / Series) by label instead of by position.

limma's ``lmFit`` and ``contrasts.fit`` match their inputs by position (``contrasts.fit`` only warns
when the row names of the contrasts differ from the coefficient names); here inputs that both carry
labels are aligned by label, and label sets that differ are refused, naming the labels.
"""

from __future__ import annotations

import numpy as np


def labels_of(index) -> list[str] | None:
    """The labels of a pandas index as strings, or None for row numbers (no labels): pandas' default
    0..n-1 and R's default 1..n (the row names of a ``model.matrix`` written from R)."""
    if index is None:
        return None
    import pandas as pd  # here: a DataFrame's labels (pandas is loaded then)

    index = pd.Index(index)
    if pd.api.types.is_integer_dtype(index.dtype):
        values = index.to_numpy()
        n = len(values)
        if np.array_equal(values, np.arange(n)) or np.array_equal(values, np.arange(1, n + 1)):
            return None
    return [str(x) for x in index]


def _quoted(values, limit: int = 5) -> str:
    values = list(values)
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def match_labels(want, have, want_what: str, have_what: str, noun: str) -> np.ndarray | None:
    """Positions in ``have`` of the labels ``want`` (None when both are already in the same order).

    ``want`` and ``have`` are label lists (from :func:`labels_of`).  Raises a ValueError naming the
    first labels of each side that the other side lacks, or the duplicated labels that prevent a
    match.
    """
    import pandas as pd  # here: the fit jobs give arrays and do not load pandas

    want = pd.Index(want, dtype=object)
    have = pd.Index(have, dtype=object)
    if want.equals(have):
        return None
    only_want = want[~want.isin(have)]
    only_have = have[~have.isin(want)]
    if len(only_want) or len(only_have):
        parts = []
        if len(only_want):
            parts.append(f"only in {want_what}: {_quoted(only_want)}")
        if len(only_have):
            parts.append(f"only in {have_what}: {_quoted(only_have)}")
        raise ValueError(
            f"{noun} differ between {want_what} and {have_what}: {'; '.join(parts)} "
            f"(inputs with labels are matched by label; rename them to agree)"
        )
    if not (want.is_unique and have.is_unique):
        dup = want[want.duplicated()].union(have[have.duplicated()])
        raise ValueError(
            f"{noun} {_quoted(dup)} are duplicated, so {want_what} and {have_what} (in different "
            f"orders) cannot be matched by label; make the {noun} unique"
        )
    return have.get_indexer(want).astype(np.intp)


def align_by_label(obj, want, want_what: str, have_what: str, noun: str):
    """``obj`` (a DataFrame or Series) with its rows in the order of the labels ``want`` when both
    carry labels (``want`` from :func:`labels_of`, None for none); unchanged otherwise.  Label sets
    that differ are refused as in :func:`match_labels`."""
    have = labels_of(obj.index)
    if want is None or have is None:
        return obj
    order = match_labels(want, have, want_what, have_what, noun)
    return obj if order is None else obj.iloc[order]

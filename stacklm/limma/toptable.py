"""limma's ``topTable``: one table of results per coefficient, or the moderated F over several."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stacklm.limma.ftest import moderated_f
from stacklm.limma.marraylm import LinearModelFit
from stacklm.limma.toptableextras import confint_columns
from stacklm.multiple_testing.padjust import p_adjust


def top_table(
    fit: LinearModelFit,
    coef: str | Sequence[str] | None = None,
    number: int | None = None,
    adjust_method: str = "BH",
    sort_by: str = "B",
    confint: bool | float = False,
) -> pd.DataFrame:
    """Results table indexed by feature id, as ``topTable(fit, coef, number, adjust.method, sort.by)``.

    One coefficient: columns ``logFC, AveExpr, t, P.Value, adj.P.Val, B``.  Several coefficients (or
    ``coef=None``, meaning all but ``Intercept``): the estimates, ``AveExpr, F, P.Value, adj.P.Val``
    with the moderated F over those coefficients.  ``number=None`` returns every feature;
    ``sort_by`` is ``"B"``/``"p"``/``"t"``/``"logFC"``/``"F"`` or ``"none"`` (input order).
    ``confint`` (True = 0.95, or a level) adds ``CI.L`` and ``CI.R`` after ``logFC`` for one
    coefficient, as ``topTable(confint = )``.
    """
    if fit.t is None:
        raise ValueError("run e_bayes before top_table")
    if coef is None:
        coef = [c for c in fit.coef_names if c != "Intercept"]
    if isinstance(coef, str):
        coef = [coef]
    coef = list(dict.fromkeys(coef))
    index = pd.Index(fit.feature_ids, name="feature_id")
    if len(coef) > 1:
        sub = fit.subset_coefficients(fit.coef_index(coef))
        F, p = moderated_f(sub)
        table = pd.DataFrame(sub.coefficients, index=index, columns=coef)
        table["AveExpr"] = fit.amean
        table["F"] = F
        table["P.Value"] = p
        table["adj.P.Val"] = p_adjust(p, adjust_method)
        key = {"B": "P.Value", "F": "P.Value", "p": "P.Value", "P": "P.Value"}.get(sort_by)
    else:
        j = fit.coef_index(coef)[0]
        table = pd.DataFrame(
            {
                "logFC": fit.coefficients[:, j],
                "AveExpr": fit.amean,
                "t": fit.t[:, j],
                "P.Value": fit.p_value[:, j],
                "adj.P.Val": p_adjust(fit.p_value[:, j], adjust_method),
                "B": fit.lods[:, j],
            },
            index=index,
        )
        if confint:
            low, high = confint_columns(fit, confint, coefs=[coef[0]])
            table.insert(1, "CI.L", low[:, 0])
            table.insert(2, "CI.R", high[:, 0])
        key = {"B": "B", "p": "P.Value", "P": "P.Value", "t": "t", "logFC": "logFC"}.get(sort_by)
    if sort_by != "none":
        if key is None:
            raise ValueError(f"sort_by {sort_by!r} is not valid here")
        values = table[key].to_numpy()
        order_key = (
            values if key == "P.Value" else -np.abs(values) if key in ("t", "logFC") else -values
        )
        table = table.iloc[np.argsort(order_key, kind="stable")]
    if number is not None:
        table = table.iloc[:number]
    return table

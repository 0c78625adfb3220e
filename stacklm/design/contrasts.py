"""Contrast matrices from strings (limma's ``makeContrasts``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


class ContrastError(ValueError):
    """A contrast string that cannot be read as a linear combination of coefficients."""


def _contrast_vector(expr: str, coef_names: Sequence[str]) -> np.ndarray:
    names = sorted(coef_names, key=len, reverse=True)
    placeholder = {}
    text = expr
    for i, name in enumerate(names):
        token = f"__c{i}__"
        pattern = r"(?<![A-Za-z0-9_.:])" + re.escape(name) + r"(?![A-Za-z0-9_.:])"
        text, k = re.subn(pattern, token, text)
        if k:
            placeholder[token] = list(coef_names).index(name)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        raise ContrastError(
            f"contrast {expr!r} is not a valid expression ({err.msg}); write e.g. "
            f"'{coef_names[-1]} - {coef_names[-2] if len(coef_names) > 1 else coef_names[0]}'"
        ) from None
    p = len(coef_names)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id in placeholder:
                v = np.zeros(p)
                v[placeholder[node.id]] = 1.0
                return v
            raise ContrastError(
                f"contrast {expr!r} names {node.id!r}, which is not a coefficient; "
                f"coefficients are: {', '.join(coef_names)}"
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Add | ast.Sub | ast.Mult | ast.Div
        ):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
                    raise ContrastError(
                        f"contrast {expr!r} multiplies two coefficients; it must be linear"
                    )
                return a * b
            if isinstance(b, np.ndarray):
                raise ContrastError(
                    f"contrast {expr!r} divides by a coefficient; it must be linear"
                )
            return a / b
        raise ContrastError(
            f"contrast {expr!r} may only use coefficient names, numbers, + - * / and parentheses"
        )

    value = ev(tree)
    if not isinstance(value, np.ndarray):
        raise ContrastError(f"contrast {expr!r} does not involve any coefficient")
    return value


def make_contrasts(
    contrasts: Mapping[str, str] | Sequence[str], coef_names: Sequence[str]
) -> pd.DataFrame:
    """Contrast matrix (coefficients x contrasts) from strings, as limma's ``makeContrasts``.

    ``contrasts`` is a dict name -> expression, or a list of expressions (named by themselves).
    """
    if isinstance(contrasts, Mapping):
        items = list(contrasts.items())
    else:
        items = [(c, c) for c in contrasts]
    cols = {name: _contrast_vector(expr, list(coef_names)) for name, expr in items}
    return pd.DataFrame(cols, index=list(coef_names))

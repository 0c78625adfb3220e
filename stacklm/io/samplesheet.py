"""Sample sheets: reading, matching to the matrix columns, and safe ``subset`` expressions."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


class SampleSheetError(ValueError):
    """A sample sheet that cannot be used as it is; the message names the file and the fix."""


def _few(items: Sequence, k: int = 5) -> str:
    items = [str(i) for i in items]
    head = ", ".join(items[:k])
    return head + (f" (and {len(items) - k} more)" if len(items) > k else "")


def read_sample_sheet(path, sample_id: str = "sample_id") -> pd.DataFrame:
    """Read a TSV/CSV sample sheet (one row per sample), indexed by the ``sample_id`` column as text."""
    path = Path(path)
    if not path.exists():
        raise SampleSheetError(
            f"sample sheet {path} does not exist (looked for {path.resolve()} from the working "
            f"directory {Path.cwd()}); check 'samples' in the config"
        )
    sep = "," if path.suffix.lower() == ".csv" or path.name.lower().endswith(".csv.gz") else "\t"
    try:
        sheet = pd.read_csv(path, sep=sep, dtype={sample_id: str}, keep_default_na=True)
    except Exception as err:  # pandas raises many kinds
        raise SampleSheetError(f"cannot read sample sheet {path}: {err}") from None
    if sample_id not in sheet.columns:
        raise SampleSheetError(
            f"sample sheet {path} has no column {sample_id!r} (config 'sample_id'); "
            f"its columns are: {', '.join(map(str, sheet.columns))}"
        )
    ids = sheet[sample_id]
    if ids.isna().any():
        rows = [str(i + 2) for i in np.flatnonzero(ids.isna().to_numpy())]
        raise SampleSheetError(f"sample sheet {path}: empty {sample_id!r} on line(s) {_few(rows)}")
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise SampleSheetError(
            f"sample sheet {path}: duplicated {sample_id!r} value(s) {_few(dup)}; each sample must "
            "appear once"
        )
    stripped = {}
    for name in sheet.columns:
        col = sheet[name]
        if name == sample_id or not (col.dtype == object or pd.api.types.is_string_dtype(col)):
            continue
        text = col.where(col.isna(), col.astype(str))
        clean = text.str.strip()
        changed = int((clean != text).fillna(False).sum())
        if changed:
            sheet[name] = clean
            stripped[name] = changed
    if stripped:
        warnings.warn(
            f"sample sheet {path}: removed leading/trailing spaces from "
            + ", ".join(f"{n} value(s) of {c!r}" for c, n in stripped.items())
            + " (a value such as 'cancer ' would otherwise be a level of its own)",
            stacklevel=2,
        )
    return sheet.set_index(sample_id, drop=True)


def match_samples(
    matrix_samples: Sequence[str],
    sheet: pd.DataFrame,
    matrix_path="matrix",
    sheet_path="sample sheet",
) -> None:
    """Every matrix column must have a sheet row and vice versa; the error lists a few of each side."""
    in_matrix = [str(s) for s in matrix_samples]
    in_sheet = [str(s) for s in sheet.index]
    sheet_ids, matrix_ids = set(in_sheet), set(in_matrix)  # once (was O(samples^2))
    only_matrix = [s for s in in_matrix if s not in sheet_ids]
    only_sheet = [s for s in in_sheet if s not in matrix_ids]
    if only_matrix or only_sheet:
        parts = []
        if only_matrix:
            parts.append(
                f"{len(only_matrix)} matrix column(s) not in the sample sheet: {_few(only_matrix)}"
            )
        if only_sheet:
            parts.append(
                f"{len(only_sheet)} sample sheet row(s) not in the matrix: {_few(only_sheet)}"
            )
        raise SampleSheetError(
            f"samples of {matrix_path} and {sheet_path} do not match: "
            + "; ".join(parts)
            + ". Make the sheet's sample ids equal to the matrix column names (check 'sample_id')"
        )


_COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


def evaluate_subset(sheet: pd.DataFrame, expression: str) -> pd.Series:
    """Boolean mask of the rows selected by a filter such as ``"tissue == 'blood' and age >= 18"``.

    Only column names, literals (numbers, strings, lists), comparisons (``== != < <= > >= in not in``),
    ``and``/``or``/``not`` (or ``& | ~``) and parentheses are allowed: no function calls or attribute
    access, so a config can never run code.  Missing values never match.
    """
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as err:
        raise SampleSheetError(
            f"subset {expression!r} is not a valid expression: {err.msg}"
        ) from None

    def fail(node, what="this construct"):
        raise SampleSheetError(
            f"subset {expression!r}: {what} is not allowed; use column names, literals, comparisons, "
            "'in', and/or/not"
        )

    def literal(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            return [literal(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = literal(node.operand)
            if isinstance(v, int | float):
                return -v
        return fail(node, "a non-literal value")

    def value(node):
        if isinstance(node, ast.Name):
            if node.id == sheet.index.name and node.id not in sheet.columns:
                return pd.Series(sheet.index, index=sheet.index)
            if node.id not in sheet.columns:
                raise SampleSheetError(
                    f"subset {expression!r} uses {node.id!r}, not a column of the sample sheet; "
                    f"columns are: {', '.join(map(str, sheet.columns))}"
                )
            return sheet[node.id]
        return literal(node)

    def ev(node) -> pd.Series:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BoolOp):
            parts = [ev(v) for v in node.values]
            out = parts[0]
            for p in parts[1:]:
                out = (out & p) if isinstance(node.op, ast.And) else (out | p)
            return out
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr):
            a, b = ev(node.left), ev(node.right)
            return (a & b) if isinstance(node.op, ast.BitAnd) else (a | b)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert):
            return ~ev(node.operand)
        if isinstance(node, ast.Compare):
            left = value(node.left)
            out = None
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = value(comp)
                if isinstance(op, ast.In | ast.NotIn):
                    if not isinstance(right, list):
                        fail(comp, "'in' needs a list such as ['a', 'b']")
                    res = pd.Series(left).isin(right)
                    res = ~res if isinstance(op, ast.NotIn) else res
                elif type(op) in _COMPARE:
                    res = _COMPARE[type(op)](left, right)
                else:
                    fail(op)
                res = pd.Series(res, index=sheet.index).fillna(False).astype(bool)
                for side in (left, right):
                    if isinstance(side, pd.Series):
                        res &= side.notna()
                out = res if out is None else (out & res)
                left = right
            return out
        if isinstance(node, ast.Name):
            return sheet[node.id].fillna(False).astype(bool)
        return fail(node)

    mask = ev(tree)
    if not isinstance(mask, pd.Series):
        fail(tree, "an expression that does not compare columns")
    return mask.astype(bool)

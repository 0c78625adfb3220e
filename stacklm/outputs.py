"""Atomic writers for result files: a temp file in the same folder, renamed into place when
complete, so an interrupted job never leaves a file that looks finished."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_tsv(table: pd.DataFrame, path, index: bool = False) -> None:
    """Write a table as TSV (gzip when the name ends in .gz), atomically.

    Floats are written in their shortest round-trip form (they read back bit-equal), missing values
    as ``NA``; gzip output is deterministic (no timestamp), so equal tables give equal bytes.
    """
    if index:
        table = table.reset_index()
    columns = {}
    for name in table.columns:
        col = table[name]
        if pd.api.types.is_float_dtype(col):
            columns[str(name)] = pa.array(col.to_numpy(dtype=np.float64), from_pandas=True)
        elif pd.api.types.is_integer_dtype(col) or pd.api.types.is_bool_dtype(col):
            columns[str(name)] = pa.array(col.to_numpy())
        else:
            columns[str(name)] = pa.array(col.astype(str).to_numpy(dtype=object), type=pa.string())
    arrow = pa.table(columns)
    options = pacsv.WriteOptions(
        delimiter="\t", quoting_style="none", quoting_header="none", null_string="NA"
    )
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz,
            ):
                pacsv.write_csv(arrow, gz, options)
        else:
            pacsv.write_csv(arrow, str(tmp), options)


def write_json(obj, path) -> None:
    """Write JSON atomically (sorted keys, NaN as null)."""

    def clean(o):
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        if isinstance(o, np.generic):
            o = o.item()
        if isinstance(o, float) and not np.isfinite(o):
            return None if np.isnan(o) else ("Infinity" if o > 0 else "-Infinity")
        return o

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean(obj), indent=2, sort_keys=True) + "\n")


def write_text(text: str, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)

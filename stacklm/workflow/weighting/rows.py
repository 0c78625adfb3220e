"""The rows of the binary store an analysis uses (its samples in design order, the features
filterByExpr keeps), and the counts step's tables read back."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stacklm.io.store import open_binary_matrix
from stacklm.workflow.pipeline import FIT_BLOCK_VALUES


def read_libraries(path) -> pd.DataFrame:
    """``libraries.tsv`` (indexed by sample id), floats read back bit-equal."""
    kw = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    table = pd.read_csv(path, sep="\t", dtype={"sample_id": str}, **kw)  # pandas 3: exact
    return table.set_index("sample_id")


def read_keep(path) -> tuple[np.ndarray, np.ndarray]:
    """(feature ids, keep flags) of ``filter_by_expr.tsv.gz`` (store order)."""
    table = pd.read_csv(path, sep="\t", dtype={"feature_id": str})
    return table["feature_id"].to_numpy(dtype=object), table["keep"].to_numpy(dtype=bool)


class AnalysisRows:
    """The rows of the store an analysis uses, in blocks: its samples (design order), the features
    filterByExpr keeps (counts) and the effective library sizes."""

    def __init__(self, store_path, design: pd.DataFrame, libraries_path=None, keep_path=None):
        self.store = open_binary_matrix(store_path, load_feature_ids=False)
        self.samples = [str(s) for s in design.index]
        position = {s: i for i, s in enumerate(self.store.samples)}
        self.columns = [position[s] for s in self.samples]
        #: the analysis uses every sample of the store in store order: rows are read as stored
        self.all_columns = self.columns == list(range(len(self.store.samples)))
        self.lib = None
        if libraries_path:
            libs = read_libraries(libraries_path)
            self.lib = libs.loc[self.samples, "effective_lib_size"].to_numpy(dtype=np.float64)
        self.keep = None
        self.keep_ids = None
        if keep_path:
            self.keep_ids, self.keep = read_keep(keep_path)
            if self.keep.size != self.store.n_features:
                raise ValueError(
                    f"{keep_path} has {self.keep.size} features, the store {self.store.n_features}"
                )

    @property
    def n_features(self) -> int:
        return self.store.n_features

    def blocks(
        self, start: int, stop: int, block_values: int = FIT_BLOCK_VALUES, with_rows: bool = False
    ):
        """(feature ids, values) of the kept rows of ``start:stop``, in row blocks of about
        ``block_values`` values (the analysis' sample columns, design order); ``with_rows`` adds
        the rows' positions in the store (the PCA diagnostics' row choice)."""
        ids = self.store.read_feature_ids(start, stop)
        if self.keep_ids is not None and not np.array_equal(
            np.asarray(self.keep_ids[start:stop]).astype(str), np.asarray(ids).astype(str)
        ):
            raise ValueError("the filter_by_expr flags do not follow the store's features")
        step = max(1, block_values // max(len(self.columns), 1))
        for a in range(start, stop, step):
            b = min(a + step, stop)
            Y = self.store.rows(a, b)  # a private copy
            block_ids = ids[a - start : b - start]
            rows = np.arange(a, b)
            k = None if self.keep is None else self.keep[a:b]
            if not self.all_columns:
                Y = Y[:, self.columns] if k is None else Y[np.ix_(k, self.columns)]
            elif k is not None and not k.all():
                Y = Y[k]
            if k is not None:
                block_ids, rows = block_ids[k], rows[k]
            yield (np.asarray(block_ids), Y, rows) if with_rows else (np.asarray(block_ids), Y)

    def all_rows(self):
        """(feature ids, values) of every kept row (one matrix: the global estimators)."""
        parts = list(self.blocks(0, self.n_features))
        ids = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, dtype=object)
        n = len(self.columns)
        Y = np.vstack([p[1] for p in parts]) if parts else np.empty((0, n))
        return ids, Y


def any_missing(rows: AnalysisRows) -> bool:
    for _, Y in rows.blocks(0, rows.n_features):
        if np.isnan(Y).any():
            return True
    return False

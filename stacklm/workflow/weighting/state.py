"""The weighting state an analysis' global steps hand to its chunks (one ``.npz``), and limma's
settings those steps use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stacklm.io.atomic import atomic_path, json_plain

if TYPE_CHECKING:
    from stacklm.limma.voom import VoomTrend

#: voom's lowess span (limma's default)
VOOM_SPAN = 0.5
#: duplicateCorrelation's trim of the atanh correlations (limma's default)
DUPCOR_TRIM = 0.15


@dataclass
class WeightingState:
    """What the chunks need from the global steps (written as one ``.npz``).

    ``values``: :func:`values_kind`; ``samples``: design order; ``block``: the block label of every
    sample (None without a block); ``sample_weights``: the sample weights of the fits (the sheet
    column, arrayWeights or voomWithQualityWeights; None for none), which multiply voom's;
    ``voom_prior_weights``: the prior weights of voom's own fit (the sheet column; for
    voomWithQualityWeights its first arrayWeights, as limma's second voom call);
    ``voom_correlation``: the correlation voom's fit used with the block (None: voom fitted
    without it); ``correlation``: the final block correlation; ``trend``: voom's trend;
    ``complete``: no missing value in the analysis' matrix (decides limma's cov.coefficients with
    sample weights); ``sx``/``sy``: voom's trend points (plots); ``atanh``: the per-feature
    correlations of the last duplicateCorrelation (plots); ``history``: one record per step."""

    values: str
    samples: list
    block: list | None = None
    block_column: str | None = None
    sample_weights: np.ndarray | None = None
    sample_weights_source: str | None = None
    voom_prior_weights: np.ndarray | None = None
    voom_correlation: float | None = None
    correlation: float | None = None
    correlation_estimated: bool = False
    trend: VoomTrend | None = None
    complete: bool = True
    sx: np.ndarray | None = None
    sy: np.ndarray | None = None
    atanh: np.ndarray | None = None
    atanh_ids: np.ndarray | None = None
    n_not_converged: int | None = None
    history: list = field(default_factory=list)

    def to_arrays(self, prefix: str = "", leave_out: tuple = ()) -> dict:
        """The state as ``.npz`` arrays named ``prefix + name`` (``leave_out``: per-feature fields
        not written, e.g. those the next global step replaces)."""
        meta = {
            "values": self.values,
            "samples": list(self.samples),
            "block": self.block,
            "block_column": self.block_column,
            "sample_weights_source": self.sample_weights_source,
            "voom_correlation": self.voom_correlation,
            "correlation": self.correlation,
            "correlation_estimated": self.correlation_estimated,
            "complete": self.complete,
            "n_not_converged": self.n_not_converged,
            "history": json_plain(self.history),
            "trend_span": None if self.trend is None else self.trend.span,
            "trend_constant_one": None if self.trend is None else self.trend.constant_one,
        }
        arrays = {"meta": np.array(json.dumps(meta))}
        for name in ("sample_weights", "voom_prior_weights", "sx", "sy", "atanh"):
            value = getattr(self, name)
            if value is not None and name not in leave_out:
                arrays[name] = np.asarray(value, dtype=np.float64)
        if self.atanh_ids is not None and "atanh_ids" not in leave_out:
            arrays["atanh_ids"] = np.asarray(self.atanh_ids).astype(str)
        if self.trend is not None:
            for name in ("line_x", "line_y", "knots_x", "knots_y"):
                arrays[f"trend_{name}"] = getattr(self.trend, name)
        return {prefix + k: v for k, v in arrays.items()}

    def save(self, path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **self.to_arrays())

    @classmethod
    def from_arrays(cls, z, prefix: str = "") -> WeightingState:
        """The state from the arrays :meth:`to_arrays` wrote (``z``: a mapping or an open
        ``.npz``)."""
        names = [k for k in z if k.startswith(prefix)]
        meta = json.loads(str(z[prefix + "meta"]))
        arrays = {k[len(prefix) :]: z[k] for k in names if k != prefix + "meta"}
        trend = None
        if "trend_line_x" in arrays:
            from stacklm.limma.voom import VoomTrend  # (the dupcor-only jobs do not import voom)

            trend = VoomTrend(
                line_x=arrays["trend_line_x"],
                line_y=arrays["trend_line_y"],
                knots_x=arrays["trend_knots_x"],
                knots_y=arrays["trend_knots_y"],
                span=float(meta["trend_span"]),
                constant_one=bool(meta["trend_constant_one"]),
            )
        return cls(
            values=meta["values"],
            samples=meta["samples"],
            block=meta["block"],
            block_column=meta["block_column"],
            sample_weights=arrays.get("sample_weights"),
            sample_weights_source=meta["sample_weights_source"],
            voom_prior_weights=arrays.get("voom_prior_weights"),
            voom_correlation=meta["voom_correlation"],
            correlation=meta["correlation"],
            correlation_estimated=bool(meta["correlation_estimated"]),
            trend=trend,
            complete=bool(meta["complete"]),
            sx=arrays.get("sx"),
            sy=arrays.get("sy"),
            atanh=arrays.get("atanh"),
            atanh_ids=arrays.get("atanh_ids"),
            n_not_converged=meta["n_not_converged"],
            history=list(meta["history"]),
        )

    @classmethod
    def load(cls, path) -> WeightingState:
        with np.load(path, allow_pickle=False) as z:
            return cls.from_arrays({k: z[k] for k in z.files})

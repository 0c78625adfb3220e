"""What one analysis is, built once: :class:`AnalysisSpec` (the validated settings, defaults from
``config/schema.yaml`` only) and :class:`DesignInfo` (what the design step learned from the formula
and the sample sheet, written to ``base_design.json`` so that no later step parses the formula again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from stacklm.workflow.config import filter_by_expr_settings, validate_analysis


@dataclass(frozen=True)
class Moderation:
    """``analyses.<name>.moderation``: ``method`` (``ebayes`` or ``none``) and limma
    ``eBayes(trend=, robust=, legacy=)``."""

    method: str
    trend: bool
    robust: bool
    legacy: bool


@dataclass(frozen=True)
class Decide:
    """``analyses.<name>.decide``: limma ``decideTests(method=, lfc=)`` at ``fdr.alpha``."""

    method: str
    lfc: float


@dataclass(frozen=True)
class SurrogateSettings:
    """``surrogate_variables`` (0, N or ``"auto"`` = sva's num.sv), ``surrogate_method``, ``surrogate_seed``."""

    requested: int | str
    method: str
    seed: int

    @property
    def wanted(self) -> bool:
        return self.requested not in (0, None)


@dataclass(frozen=True)
class FilterByExpr:
    """``analyses.<name>.filter_by_expr``: edgeR ``filterByExpr(min.count, min.total.count,
    large.n, min.prop)``."""

    min_count: float
    min_total_count: float
    large_n: float
    min_prop: float


@dataclass(frozen=True)
class Weighting:
    """How an analysis weights and correlates its observations: ``weights`` (``voom``,
    ``voom_quality`` or ``none``), prior ``sample_weights`` (a sample sheet column), ``array_weights``
    (limma's arrayWeights), ``block`` (a sample sheet column) and a given ``correlation``."""

    weights: str = "none"
    sample_weights: str | None = None
    array_weights: bool = False
    block: str | None = None
    correlation: float | None = None

    @property
    def plain(self) -> bool:
        """Neither weights nor blocks: the unweighted fit of the values as given."""
        return (
            self.weights == "none"
            and self.sample_weights is None
            and not self.array_weights
            and self.block is None
        )


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis, validated: the only object later steps read its settings from."""

    name: str
    formula: str
    levels: tuple[tuple[str, tuple], ...]
    subset: str | None
    contrasts: tuple[tuple[str, str], ...]
    test: tuple[str, ...]
    surrogate: SurrogateSettings
    moderation: Moderation
    decide: Decide
    threshold_fc: float | None
    confidence_level: float
    export_corrected: bool
    settings: Mapping = field(compare=False, repr=False)  # the validated dict, for provenance
    filter_by_expr: FilterByExpr | None = None  # counts: edgeR filterByExpr (None = off)
    weighting: Weighting = field(default_factory=Weighting)

    @classmethod
    def from_settings(cls, name: str, settings: Mapping) -> AnalysisSpec:
        """Validate ``settings`` (an ``analyses.<name>`` entry; unknown keys are errors naming the
        closest valid one) and complete them with the schema's defaults."""
        s = validate_analysis(settings, name)
        test = s["test"]
        return cls(
            name=name,
            formula=s["formula"],
            levels=tuple((str(k), tuple(v)) for k, v in (s.get("levels") or {}).items()),
            subset=s.get("subset"),
            contrasts=tuple((str(k), str(v)) for k, v in (s.get("contrasts") or {}).items()),
            test=(test,) if isinstance(test, str) else tuple(test),
            surrogate=SurrogateSettings(
                requested=s["surrogate_variables"],
                method=s["surrogate_method"],
                seed=int(s["surrogate_seed"]),
            ),
            moderation=Moderation(
                method=s["moderation"]["method"],
                trend=bool(s["moderation"]["trend"]),
                robust=bool(s["moderation"]["robust"]),
                legacy=bool(s["moderation"]["legacy"]),
            ),
            decide=Decide(method=s["decide"]["method"], lfc=float(s["decide"]["lfc"])),
            threshold_fc=s["threshold"]["fc"],
            confidence_level=float(s["confidence_level"]),
            export_corrected=bool(s["export_corrected"]),
            settings=s,
            filter_by_expr=_filter_by_expr(s.get("filter_by_expr")),
            weighting=Weighting(
                weights=s.get("weights") or "none",
                sample_weights=s.get("sample_weights"),
                array_weights=bool(s.get("array_weights")),
                block=s.get("block"),
                correlation=None if s.get("correlation") is None else float(s["correlation"]),
            ),
        )

    @property
    def levels_dict(self) -> dict[str, list]:
        return {k: list(v) for k, v in self.levels}

    @property
    def contrasts_dict(self) -> dict[str, str]:
        return dict(self.contrasts)


def _filter_by_expr(value) -> FilterByExpr | None:
    params = filter_by_expr_settings(value)
    return None if params is None else FilterByExpr(**{k: float(v) for k, v in params.items()})


@dataclass(frozen=True)
class DesignInfo:
    """What the design step found: the formula's variables (in formula order), which of them are
    numeric covariates (not factors), the design columns, the columns of sva's null design (the
    design without the tested columns), and the samples dropped for missing formula variables."""

    variables: tuple[str, ...]
    numeric_covariates: tuple[str, ...]
    design_columns: tuple[str, ...]
    null_design_columns: tuple[str, ...]
    dropped_samples: tuple[str, ...]
    n_samples: int

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping) -> DesignInfo:
        return cls(
            variables=tuple(data["variables"]),
            numeric_covariates=tuple(data["numeric_covariates"]),
            design_columns=tuple(data["design_columns"]),
            null_design_columns=tuple(data["null_design_columns"]),
            dropped_samples=tuple(data["dropped_samples"]),
            n_samples=int(data["n_samples"]),
        )

    @classmethod
    def read(cls, path) -> DesignInfo:
        with open(path) as fh:
            return cls.from_json(json.load(fh))

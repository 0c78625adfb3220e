"""stacklm: stacked per-feature linear models with limma-exact moderation.

The steps mirror limma: :func:`design_matrix` (model.matrix), :func:`lm_fit` (lmFit),
:func:`contrasts_fit` (contrasts.fit), :func:`e_bayes` (eBayes), :func:`top_table` (topTable),
plus :func:`p_adjust` (p.adjust) and :func:`qvalue` (qvalue), and :func:`run_analysis` for a whole
analysis as the workflow runs it.
"""

import importlib
from typing import TYPE_CHECKING

# The exports are imported on first use (PEP 562), so that a workflow step that needs only a few
# modules (fit_chunk: io, fit) does not pay for importing all of them (scipy.stats alone takes
# ~0.5 s), which every one of the many short jobs would.
_EXPORTS = {
    "moderate_and_test": "analysis",
    "run_analysis": "analysis",
    "design_matrix": "design.formula",
    "make_contrasts": "design.contrasts",
    "LinearModelFit": "limma.marraylm",
    "concat_fits": "limma.fitstore",
    "contrasts_fit": "limma.contrasts",
    "lm_fit": "limma.lmfit",
    "load_fit": "limma.fitstore",
    "save_fit": "limma.fitstore",
    "e_bayes": "limma.ebayes",
    "fit_f_dist": "limma.fitfdist",
    "fit_f_dist_robustly": "limma.fitfdistrobustly",
    "moderated_f": "limma.ftest",
    "squeeze_var": "limma.squeezevar",
    "p_adjust": "multiple_testing.padjust",
    "qvalue": "multiple_testing.qvalue",
    "top_table": "limma.toptable",
    "treat": "limma.treat",
    "top_treat": "limma.treat",
    "decide_tests": "limma.decidetests",
    "remove_batch_effect": "limma.removebatcheffect",
    "voom": "limma.voom",
    "voom_with_quality_weights": "limma.voomquality",
    "array_weights": "limma.arrayweights",
    "duplicate_correlation": "limma.dupcor",
    "lm_wfit": "limma.weightedfit",
    "gls_series": "limma.glsseries",
    "fit_f_dist_unequal_df1": "limma.fitfdistunequaldf1",
    "filter_by_expr": "edger.filterbyexpr",
    "calc_norm_factors": "edger.calcnormfactors",
    "cpm": "edger.cpm",
    "AnalysisSpec": "spec",
}

if TYPE_CHECKING:
    from .analysis import moderate_and_test, run_analysis
    from .design.contrasts import make_contrasts
    from .design.formula import design_matrix
    from .edger.calcnormfactors import calc_norm_factors
    from .edger.cpm import cpm
    from .edger.filterbyexpr import filter_by_expr
    from .limma.arrayweights import array_weights
    from .limma.contrasts import contrasts_fit
    from .limma.decidetests import decide_tests
    from .limma.dupcor import duplicate_correlation
    from .limma.ebayes import e_bayes
    from .limma.fitfdist import fit_f_dist
    from .limma.fitfdistrobustly import fit_f_dist_robustly
    from .limma.fitfdistunequaldf1 import fit_f_dist_unequal_df1
    from .limma.fitstore import concat_fits, load_fit, save_fit
    from .limma.ftest import moderated_f
    from .limma.glsseries import gls_series
    from .limma.lmfit import lm_fit
    from .limma.marraylm import LinearModelFit
    from .limma.removebatcheffect import remove_batch_effect
    from .limma.squeezevar import squeeze_var
    from .limma.toptable import top_table
    from .limma.treat import top_treat, treat
    from .limma.voom import voom
    from .limma.voomquality import voom_with_quality_weights
    from .limma.weightedfit import lm_wfit
    from .multiple_testing.padjust import p_adjust
    from .multiple_testing.qvalue import qvalue
    from .spec import AnalysisSpec


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:  # a submodule, as `import stacklm; stacklm.fit` gave before
        if name.startswith("_"):
            raise AttributeError(f"module 'stacklm' has no attribute {name!r}")
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'stacklm' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__version__ = "0.1.0"

__all__ = [
    "AnalysisSpec",
    "LinearModelFit",
    "array_weights",
    "calc_norm_factors",
    "concat_fits",
    "contrasts_fit",
    "cpm",
    "decide_tests",
    "design_matrix",
    "duplicate_correlation",
    "e_bayes",
    "filter_by_expr",
    "fit_f_dist",
    "fit_f_dist_robustly",
    "fit_f_dist_unequal_df1",
    "gls_series",
    "lm_fit",
    "lm_wfit",
    "load_fit",
    "make_contrasts",
    "moderate_and_test",
    "moderated_f",
    "p_adjust",
    "qvalue",
    "remove_batch_effect",
    "run_analysis",
    "save_fit",
    "squeeze_var",
    "top_table",
    "top_treat",
    "treat",
    "voom",
    "voom_with_quality_weights",
]

"""stacklm: stacked per-feature linear models with limma-exact moderation.

The steps mirror limma: :func:`design_matrix` (model.matrix), :func:`lm_fit` (lmFit),
:func:`contrasts_fit` (contrasts.fit), :func:`e_bayes` (eBayes), :func:`top_table` (topTable),
plus :func:`p_adjust` (p.adjust) and :func:`qvalue` (qvalue), and :func:`run_analysis` for a whole
analysis as the workflow runs it.
"""

from .analysis import moderate_and_test, run_analysis
from .design import design_matrix, make_contrasts
from .fit import LinearModelFit, concat_fits, contrasts_fit, lm_fit, load_fit, save_fit
from .moderation import e_bayes, fit_f_dist, fit_f_dist_robustly, moderated_f, squeeze_var
from .multiple_testing import p_adjust, qvalue
from .toptable import top_table

__version__ = "0.1.0"

__all__ = [
    "LinearModelFit",
    "concat_fits",
    "contrasts_fit",
    "design_matrix",
    "e_bayes",
    "fit_f_dist",
    "fit_f_dist_robustly",
    "lm_fit",
    "load_fit",
    "make_contrasts",
    "moderate_and_test",
    "moderated_f",
    "p_adjust",
    "qvalue",
    "run_analysis",
    "save_fit",
    "squeeze_var",
    "top_table",
]

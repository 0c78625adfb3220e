"""Plot labels a reader can trust (issue 14, item 15): estimates of log expression are log2 fold
changes (``input_scale: expression``, as limma expects, or after ``normalize.log2``), of methylation
M-value differences; an analysis without surrogate variables gets a plot that says so and why,
not an empty frame."""

from __future__ import annotations

import pandas as pd
import pytest

import stacklm.plots.samples as samples_mod
from stacklm.plots.style import analysis_labels, scale_labels


def test_expression_estimates_are_log2_fold_changes():
    assert scale_labels({"input_scale": "expression"}) == ("log2 expression", "log2 fold change")
    assert scale_labels({}) == ("log2 expression", "log2 fold change")  # the default scale
    assert scale_labels({"normalize": {"log2": True, "offset": 1}}) == (
        "log2(value + 1)",
        "log2 fold change",
    )
    assert scale_labels({"input_scale": "beta"}) == ("M-value", "M-value difference")
    assert scale_labels({"input_scale": "beta", "normalize": {"log2": True}})[1] == (
        "M-value difference"
    )
    assert scale_labels({"input_scale": "dosage"}) == ("dosage", "dosage difference")
    summary = {"config": {"input_scale": "expression"}, "design_columns": ["Intercept", "groupB"]}
    labels = analysis_labels("example", summary)
    assert labels.estimate("groupB") == "groupB (log2 fold change)"
    assert labels.average == "average log2 expression (Amean)"
    assert "value difference" not in labels.estimate("groupB")


@pytest.fixture
def drawn(monkeypatch):
    """The texts of the figures the plot functions save."""
    texts = []

    def capture(fig, png, data, data_path):
        texts.append(" ".join(t.get_text() for ax in fig.axes for t in ax.texts))
        texts.append(fig.axes[0].axison)

    monkeypatch.setattr(samples_mod, "save_plot", capture)
    return texts


EMPTY = pd.DataFrame(columns=["sv", "covariate", "r2", "p_value"])


@pytest.mark.parametrize(
    "requested, expected",
    [
        (0, "surrogate_variables: 0"),
        ("auto", "sva's num.sv estimated 0 surrogate variables"),
    ],
)
def test_no_surrogate_variables_says_so_and_why(drawn, requested, expected):
    samples_mod.plot_sv_associations(EMPTY, "x.png", "x.tsv", requested=requested)
    text, axis_on = drawn
    assert "No surrogate variables in this analysis" in text and expected in text, text
    assert not axis_on  # a message, not an empty frame

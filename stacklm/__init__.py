"""stacklm: stacked per-feature linear models with limma-exact moderation."""

__version__ = "0.1.0"

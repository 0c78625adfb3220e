"""Drawing the diagnostics (matplotlib, Agg): statistics, estimate structure, sample structure."""

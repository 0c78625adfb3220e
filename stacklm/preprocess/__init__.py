"""Input scales (log2, beta -> M-values, dosage checks) and feature filters."""

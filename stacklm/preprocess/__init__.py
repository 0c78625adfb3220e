"""Input scales (log2, beta -> M-values, dosage checks), the check of read counts, and feature
filters."""

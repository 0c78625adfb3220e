"""Design matrices from model formulas (formula) and contrast matrices (contrasts)."""

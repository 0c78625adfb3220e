"""Ports of statmod: mixedModel2Fit (REML for two variance components), glmgam.fit, logmdigamma."""

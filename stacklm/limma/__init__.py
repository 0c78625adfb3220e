"""Ports of limma (3.54.1 numbers; 3.63.2 where the ``legacy`` switch says), one module per R step:
lmfit (lmFit), contrasts (contrasts.fit), fitfdist / fitfdistrobustly (fitFDist, fitFDistRobustly),
squeezevar (squeezeVar), ebayes (eBayes), ftest (the moderated F), toptable (topTable), normalize
(normalizeQuantiles, normalizeCyclicLoess), loessfit (loessFit); marraylm holds the fit object that
flows between them, qrrank the rank detection of lm.fit, fitstore the chunked fits on disk."""

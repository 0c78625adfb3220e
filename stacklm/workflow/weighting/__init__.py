"""Weighted and block-correlated analyses in the workflow's chunks: RNA-seq counts (edgeR's
filterByExpr and calcNormFactors, limma's voom and voomWithQualityWeights, limma-trend on log-CPM),
prior and estimated sample weights (``sample_weights``, limma's arrayWeights) and blocks of
correlated samples (limma's duplicateCorrelation and the block-correlated lmFit, gls.series), for
any input.  Callable without Snakemake; ``scripts/weights.py``, ``scripts/fit_chunk.py``,
``scripts/moderate.py`` and ``scripts/weighting_plot.py`` only pass Snakemake's paths to these.

R's recipe is global in three places (library sizes, voom's lowess trend, duplicateCorrelation's
consensus) and row-local everywhere else, so an analysis runs as:

1. **counts step** (per analysis, counts only; :func:`.counts.counts_step`): column sums,
   filterByExpr on the analysis' design, the kept features' column sums (``keep.lib.sizes =
   FALSE``) and calcNormFactors on them -> ``results/<A>/counts/libraries.tsv`` and
   ``filter_by_expr.tsv.gz``.  It holds the kept counts of the analysis' samples (calcNormFactors'
   trimmed means are over all features): about 8 bytes x kept features x samples, twice.
2. **setup** (per analysis; :func:`.setup_step.setup_step`): the sample weights of the sheet, the
   blocks, and the two global estimators that need every feature's values at once: arrayWeights
   (``array_weights: true``) and the whole voomWithQualityWeights recipe (``weights:
   voom_quality``, with its duplicateCorrelation rounds when ``block`` is set).  Those hold the
   analysis' (kept) matrix with voom's weights and fitted values: about 8 bytes x features x
   samples x 6 (60,000 genes x 500 samples: 1.5 GB), which is why they are not run beyond ~60k
   features per job.  An analysis whose setup has nothing global (a block on continuous input with
   an estimated correlation, :func:`.plan.has_setup_job`) has no setup job: its round-1 chunks
   build the state from the sheet (:func:`.setup_step.block_state`).
3. **rounds** (:func:`.plan.weighting_rounds`), each a pass over the chunks
   (:func:`.rounds.round_chunk_step`) and one small global step: ``voom`` (per chunk the trend
   points ``sx``, ``sy`` of :func:`stacklm.limma.voom.voom_trend_points`; globally the lowess
   trend) and ``dupcor`` (per chunk :func:`stacklm.limma.dupcor.duplicate_correlation_rows`;
   globally the consensus).  The global step has no job: each part carries the state its round
   started from, and every job that reads the round (the next round's chunks, the fit chunks,
   moderate's summary, the plots) computes the state after it from all parts
   (:func:`.rounds.load_state`; the same arrays in the same order, so the same numbers in every
   job).  With ``weights: voom`` and an estimated block correlation these are the four rounds of
   the limma User's Guide recipe (voom, duplicateCorrelation, voom with block and correlation,
   duplicateCorrelation).
4. **fit** (per chunk; :func:`.fit.weighted_fit_chunk`): the values (voom's log-CPM, edgeR's
   log-CPM or the input) and weights recomputed for the chunk's rows from the final state
   (:mod:`.values`), then lm_wfit, gls.series or lmFit, written as the chunk fit file the
   unweighted fit writes, so that the moderation and the plots run unchanged.  Weights are never
   stored as a features x samples matrix.

Every per-feature quantity depends only on its row (and the global state), so the results equal
the one-shot library calls (``voom`` + ``lm_wfit`` / ``gls_series`` + ``e_bayes``) for any number
of chunks, up to BLAS rounding (<= 1e-12 relative, tested).

Modules, in the order the steps run: ``plan`` (which steps an analysis runs and the checks of its
settings; light, read when the Snakefile is parsed), ``rows`` (the analysis' rows of the store),
``state`` (:class:`~.state.WeightingState`, handed from the global steps to the chunks),
``values``, ``counts``, ``setup_step``, ``rounds``, ``fit``, ``summary`` (summary.json entries),
``plots`` (the diagnostics; the only module that imports matplotlib) and ``run`` (all steps in one
process, for tests and notebooks).  This ``__init__`` imports nothing, so that each job imports
only the module of its step.
"""

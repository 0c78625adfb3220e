"""Multiple testing: p.adjust (padjust), qvalue 2.30 (qvalue: pi0est, lfdr, qvalue), and the genomic
inflation factor (inflation)."""

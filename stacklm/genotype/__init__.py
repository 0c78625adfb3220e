"""SNP genotypes as features: PLINK .bed/.bim/.fam input by SNP range, PLINK-style QC, GWAS effects."""

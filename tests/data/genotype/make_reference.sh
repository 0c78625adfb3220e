#!/bin/sh
# Reference data for tests/genotype (run from this folder): PLINK v2.00a3.5 AVX2 (9 Aug 2022, Debian
# plink2), R 4.2.2 + snpStats 1.48.0 (make_reference.R).  Needs ../shared/data/snpstats (snpStats'
# testdata as PLINK 1 files) for the first step only.
set -eu
SHARED=${SHARED:-/work/shared/data/snpstats}
P="plink2 --threads 1 --silent"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1. subset: chromosomes 16-22 of testdata (1,986 SNPs x 400 subjects).  testdata.bim has its
#    chromosomes interleaved, which plink2 refuses ("split chromosome"): sort first (stable; all
#    positions are 0, so the file order within a chromosome is kept).
$P --bfile "$SHARED/testdata" --make-pgen --sort-vars --out "$TMP/sorted"
$P --pfile "$TMP/sorted" --chr 16-22 --make-bed --out testdata_chr16_22
rm -f testdata_chr16_22.log

# 2. R: sample sheet with a simulated quantitative trait qt, plink2 phenotype/covariate files,
#    lm(cc ~ x + sex + region) and lm(qt ~ x + sex + region) per SNP (x = copies of allele 2)
Rscript make_reference.R "$SHARED/testdata_samples.tsv"

B="--bfile testdata_chr16_22"
# 3. exact HWE test (default = ordinary p-value; and the midp variant)
$P $B --hardy --out "$TMP/hardy" && gzip -n -9 -c "$TMP/hardy.hardy" > plink2_hardy.tsv.gz
$P $B --hardy midp --out "$TMP/hardy_midp" && gzip -n -9 -c "$TMP/hardy_midp.hardy" > plink2_hardy_midp.tsv.gz

# 3b. exact HWE test on count triples a GWAS meets rarely (2,000 samples: all heterozygous, no
#     heterozygote, single rare copies, extreme deviations whose p underflows, all missing):
#     a synthetic .bed written by hwe_extremes.py (standard library only)
python3 hwe_extremes.py "$TMP/extremes"
$P --bfile "$TMP/extremes" --hardy --out "$TMP/hx" && gzip -n -9 -c "$TMP/hx.hardy" > plink2_hardy_extremes.tsv.gz
$P --bfile "$TMP/extremes" --hardy midp --out "$TMP/hxm" && gzip -n -9 -c "$TMP/hxm.hardy" > plink2_hardy_extremes_midp.tsv.gz

# 3c. allele frequencies and missing call rates per SNP
$P $B --freq --missing variant-only --out "$TMP/fm"
gzip -n -9 -c "$TMP/fm.afreq" > plink2_freq.tsv.gz
gzip -n -9 -c "$TMP/fm.vmiss" > plink2_vmiss.tsv.gz

# 4. linear association on the quantitative trait, covariates sex + region as 0/1 dummies;
#    omit-ref: A1 = ALT = the .bim's allele 1 (column 5) for every SNP
$P $B --pheno plink2_pheno.txt --pheno-name qt --covar plink2_covar.txt --glm omit-ref hide-covar \
   --out "$TMP/glm"
gzip -n -9 -c "$TMP/glm.qt.glm.linear" > plink2_glm_qt.tsv.gz

# 5. QC filters: the counts plink2 logs per filter and the SNPs it keeps
printf 'filters\tgeno_removed\thwe_removed\tmaf_removed\tremaining\n' > plink2_filters.tsv
i=0
for f in "--geno 0.2 --hwe 1e-4 --maf 0.05" "--maf 0.01" "--hwe 0.001" "--geno 0.05" \
         "--hwe 1e-4 midp" "--geno 0.1 --hwe 0.05 --maf 0.2"; do
  i=$((i + 1))
  $P $B $f --write-snplist --out "$TMP/f$i" 2> /dev/null
  g=$(sed -n 's/^--geno: \([0-9]*\) variant.*/\1/p' "$TMP/f$i.log")
  h=$(sed -n 's/^--hwe[a-z ]*: \([0-9]*\) variant.*/\1/p' "$TMP/f$i.log")
  m=$(sed -n 's/^\([0-9]*\) variants\{0,1\} removed due to allele frequency.*/\1/p' "$TMP/f$i.log")
  r=$(wc -l < "$TMP/f$i.snplist" | tr -d ' ')
  printf '%s\t%s\t%s\t%s\t%s\n' "$f" "${g:-NA}" "${h:-NA}" "${m:-NA}" "$r" >> plink2_filters.tsv
  [ $i -eq 1 ] && gzip -n -9 -c "$TMP/f1.snplist" > plink2_filters1.snplist.gz
done

# 6. genotypes as plink2 decodes them (--export A; the header names the counted allele), first 60 SNPs
head -n 60 testdata_chr16_22.bim | cut -f2 > "$TMP/first60.txt"
$P $B --extract "$TMP/first60.txt" --export A --out "$TMP/raw"
gzip -n -9 -c "$TMP/raw.raw" > plink2_export_first60.raw.gz
plink2 --version | head -n 1 >> versions.txt

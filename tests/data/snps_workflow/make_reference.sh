#!/bin/sh
# plink2 QC references for tests/workflow/test_snps_workflow.py on the embedded genotype example
# (resources/example_snps), with config/snps.yaml's filters: PLINK v2.00a3.5 AVX2 (9 Aug 2022,
# Debian plink2).  Run from this folder.
set -eu
EX=../../../resources/example_snps/example
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf 'filters\tgeno_removed\thwe_removed\tmaf_removed\tremaining\n' > plink2_example_filters.tsv
f="--geno 0.1 --hwe 1e-6 --maf 0.01"
plink2 --threads 1 --silent --bfile "$EX" $f --write-snplist --out "$TMP/f" 2> /dev/null
g=$(sed -n 's/^--geno: \([0-9]*\) variant.*/\1/p' "$TMP/f.log")
h=$(sed -n 's/^--hwe[a-z ]*: \([0-9]*\) variant.*/\1/p' "$TMP/f.log")
m=$(sed -n 's/^\([0-9]*\) variants\{0,1\} removed due to allele frequency.*/\1/p' "$TMP/f.log")
r=$(wc -l < "$TMP/f.snplist" | tr -d ' ')
printf '%s\t%s\t%s\t%s\t%s\n' "$f" "${g:-NA}" "${h:-NA}" "${m:-NA}" "$r" >> plink2_example_filters.tsv
gzip -n -9 -c "$TMP/f.snplist" > plink2_example_filters.snplist.gz
plink2 --version | head -n 1 > versions.txt

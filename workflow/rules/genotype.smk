# SNP genotypes (PLINK input, issue 18): the Manhattan plot of every analysis.  GENOTYPE and
# plink_side_files are in common.smk; the normalize and moderate rules read
# PLINK input through stacklm.workflow.genotype_steps.


rule manhattan:
    """Manhattan plot of a genotype analysis (chromosomes in order, genome-wide line at 5e-8, top
    hits labelled), thinned so that 10^6 SNPs give a small PNG."""
    input:
        results=rules.moderate.output.results,
        summary=rules.moderate.output.summary,
    output:
        png=report(
            "results/{analysis}/plots/manhattan.png",
            caption="../report/manhattan.rst",
            category="{analysis}",
            subcategory="2 Tests",
        ),
        data="results/{analysis}/plots/manhattan.tsv.gz",
    log:
        "logs/{analysis}/manhattan.log",
    benchmark:
        "logs/{analysis}/manhattan.benchmark.tsv",
    threads: 1
    resources:
        # four columns of the results table (~2x its gzip size in memory) and matplotlib
        mem_mb=lambda wildcards, input, attempt: int(
            1000 + attempt * 2 * os.path.getsize(input.results) / 1e6
        ),
        runtime=30,
    conda:
        "../../envs/stacklm.yaml"
    script:
        "../../scripts/manhattan.py"

"""The example on a real single-node SLURM cluster (tools/slurm-single-node.sh) with
``--profile profiles/slurm``: every rule runs as its own SLURM job (checked with ``sacct``), each fit
chunk in a job of its own, and the results equal a local run's.  Needs root (the script installs
and starts slurm-wlm, munge, slurmdbd) and ``pip install '.[slurm]'``; where SLURM cannot be
started the test fails with the reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import assert_matches, read_table
from workflow_helpers import REPO, example_config, snakemake, write_config

pytestmark = pytest.mark.slurm

SLURM_SCRIPT = REPO / "tools" / "slurm-single-node.sh"  # a copy of the project's shared tool
ACCOUNT = os.environ.get("SLURM_SN_ACCOUNT", "snake")
PARTITION = os.environ.get("SLURM_SN_PARTITION", "main")
CHUNKS = 3


def _script(action: str, limit: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", "-k", "10", str(limit), "bash", str(SLURM_SCRIPT), action],
        capture_output=True,
        text=True,
        timeout=limit + 30,
    )


def _running_daemons() -> set[str]:
    out = _script("status", 60).stdout
    return set(re.findall(r"^(\w+): running", out, flags=re.M))


@pytest.fixture(scope="module")
def cluster():
    """Start the single-node cluster (unless it already runs); stop it afterwards if started here."""
    if not SLURM_SCRIPT.is_file():
        pytest.fail(f"{SLURM_SCRIPT} is missing from the checkout")
    if os.geteuid() != 0:
        pytest.fail("starting the single-node SLURM cluster needs root (it installs slurm-wlm)")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: pip install '.[slurm]'")
    was_running = {"slurmctld", "slurmd"} <= _running_daemons()
    t0 = time.perf_counter()
    started = _script("start", 900)
    if started.returncode != 0:
        pytest.fail(
            f"cannot start SLURM (exit {started.returncode}):\n"
            + (started.stdout + started.stderr)[-3000:]
        )
    print(f"\nSLURM up in {time.perf_counter() - t0:.1f} s")
    yield
    if not was_running:
        stopped = _script("stop", 300)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def _slurm_jobs_by_rule(workdir: Path) -> dict[int, tuple[str, str]]:
    """SLURM job id -> (rule, wildcards) from the plugin's per-job logs
    (.snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log)."""
    root = workdir / ".snakemake" / "slurm_logs"
    jobs = {}
    for log in root.rglob("*.log"):
        parts = log.relative_to(root).parts
        jobs[int(log.stem)] = (parts[0].removeprefix("rule_"), "/".join(parts[1:-1]))
    return jobs


def _sacct(run_id: str, expected: int) -> dict[int, dict]:
    """sacct rows of the run's jobs (job name = Snakemake's SLURM run id), waiting until slurmdbd
    has recorded ``expected`` finished jobs."""
    fields = ["JobID", "JobName", "State", "NCPUS", "ReqMem", "Timelimit", "Elapsed", "ExitCode"]
    deadline = time.time() + 60
    while True:
        out = subprocess.run(
            ["timeout", "30", "sacct", "-X", "-n", "-P", "--name", run_id, "-o", ",".join(fields)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.stdout.split()]
        jobs = {int(r["JobID"]): r for r in rows}
        done = [r for r in rows if r["State"] not in ("PENDING", "RUNNING", "COMPLETING")]
        if len(done) >= expected or time.time() > deadline:
            return jobs
        time.sleep(2)


def test_example_on_slurm_equals_local_run(cluster, tmp_path):
    config = example_config(chunks=CHUNKS)
    work = tmp_path / "slurm"
    work.mkdir()
    cfg = write_config(work / "config.yaml", config)
    # README "Running on a SLURM cluster", plus faster status checks for a test
    cmd = [
        "timeout",
        "-k",
        "30",
        "900",
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(cfg),
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--default-resources",
        f"slurm_account={ACCOUNT}",
        f"slurm_partition={PARTITION}",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "1",
        "--max-status-checks-per-second",
        "10",
        "--latency-wait",
        "5",
        "--slurm-keep-successful-logs",
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=960)
    t_slurm = time.perf_counter() - t0
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)

    # every job ran as its own SLURM job, each fit chunk in a job of its own
    planned = Counter(re.findall(r"^rule (\w+):$", log, flags=re.M))  # not the local rule `all`
    assert planned["normalize"] == 1 and planned["moderate"] == 1
    assert planned["fit_chunk"] == CHUNKS
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == len(set(submitted)) == sum(planned.values()), log[-3000:]
    by_rule = _slurm_jobs_by_rule(work)
    assert set(by_rule) == set(map(int, submitted))
    assert Counter(rule for rule, _ in by_rule.values()) == planned, by_rule
    chunks = sorted(w for r, w in by_rule.values() if r == "fit_chunk")
    assert chunks == [f"geography_{k}" for k in range(CHUNKS)]
    sacct = _sacct(run_id, expected=len(by_rule))
    assert set(sacct) == set(by_rule), (sacct, by_rule)
    for row in sacct.values():
        assert row["State"] == "COMPLETED" and row["ExitCode"] == "0:0", row
        assert row["JobName"] == run_id
    fit_jobs = [j for j, (r, _) in by_rule.items() if r == "fit_chunk"]
    assert len(set(fit_jobs)) == CHUNKS and all(sacct[j]["NCPUS"] == "1" for j in fit_jobs)
    print(f"SLURM run: {t_slurm:.1f} s, {len(sacct)} jobs (run id {run_id})")
    for job_id in sorted(sacct):
        rule, wildcards = by_rule[job_id]
        row = sacct[job_id]
        print(
            f"  job {job_id:>4} {rule:<20} {wildcards:<12} {row['State']:<9} cpus {row['NCPUS']} "
            f"mem {row['ReqMem']:>6} limit {row['Timelimit']} elapsed {row['Elapsed']}"
        )

    # the same results as a local run
    local = tmp_path / "local"
    local.mkdir()
    t0 = time.perf_counter()
    out_local = snakemake(local, write_config(local / "config.yaml", config), cores=2)
    print(f"local run (--cores 2): {time.perf_counter() - t0:.1f} s")
    assert out_local.returncode == 0, out_local.stderr[-4000:]
    for name in ("results.tsv.gz", "design.tsv", "surrogate_variables.tsv"):
        a = read_table(work / "results" / "geography" / name)
        b = read_table(local / "results" / "geography" / name)
        assert list(a.columns) == list(b.columns) and len(a) == len(b) and len(a.columns)
        assert (a.iloc[:, 0].astype(str) == b.iloc[:, 0].astype(str)).all()
        for col in a.columns[1:]:
            assert_matches(a[col].to_numpy(), b[col].to_numpy(), f"{name}:{col}", rtol=1e-12)
    sa = json.loads((work / "results" / "geography" / "summary.json").read_text())
    sb = json.loads((local / "results" / "geography" / "summary.json").read_text())
    for key in ("n_features", "n_samples", "n_significant", "design_columns", "config"):
        assert sa[key] == sb[key], key
    for key in ("s2_prior", "df_prior", "pi0", "lambda_gc"):
        assert_matches(sa[key], sb[key], key, rtol=1e-12)
    assert sa["provenance"]["inputs"] == sb["provenance"]["inputs"]


def test_stacklm_run_plans_the_slurm_profile(cluster, tmp_path):
    """`stacklm run --profile profiles/slurm` reads the profile as snakemake does (dry run)."""
    cfg = write_config(tmp_path / "config.yaml", example_config(chunks=CHUNKS))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stacklm.workflow.cli",
            "run",
            "--config",
            str(cfg),
            "--directory",
            str(tmp_path),
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--dry-run",
            "--",
            "--default-resources",
            f"slurm_account={ACCOUNT}",
            f"slurm_partition={PARTITION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert f"slurm_account={ACCOUNT}" in text and f"slurm_partition={PARTITION}" in text
    assert re.search(r"fit_chunk\s+3", text), text[-3000:]


def test_parquet_fitted_directly_on_slurm_equals_local_run(cluster, tmp_path):
    """The direct Parquet path (no store; light matrix_checksum and normalize jobs, which take no
    core on a local run) on SLURM: every job is submitted with at least one CPU and the results
    equal a local run's."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(4)
    samples = [f"S{i:02d}" for i in range(12)]
    values = 2 ** rng.normal(7, 1, (1400, 12))
    values[rng.random(values.shape) < 0.02] = np.nan
    ids = pa.array([f"f{i:05d}" for i in range(1400)], pa.string())
    table = pa.table(
        {"feature_id": ids} | {s: pa.array(values[:, j]) for j, s in enumerate(samples)}
    )
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=300)  # 5 row groups
    sheet = pd.DataFrame({"sample_id": samples, "group": np.repeat(["a", "b"], 6)})
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    config = {
        "matrix": str(tmp_path / "m.parquet"),
        "samples": str(tmp_path / "samples.tsv"),
        "chunks": 2,
        "normalize": {"log2": True},
        "analyses": {"g": {"formula": "~ group", "test": ["groupb"]}},
    }
    runs = {}
    for name in ("slurm", "local"):
        work = tmp_path / name
        work.mkdir()
        cfg = write_config(work / "config.yaml", config)
        if name == "local":
            out = snakemake(work, cfg, "results/g/results.parquet", cores=2)
        else:
            out = subprocess.run(
                ["timeout", "-k", "30", "600", sys.executable, "-m", "snakemake",
                 "results/g/results.parquet", "-s", str(REPO / "Snakefile"),
                 "--directory", str(work), "--configfile", str(cfg),
                 "--profile", str(REPO / "profiles" / "slurm"), "--default-resources",
                 f"slurm_account={ACCOUNT}", f"slurm_partition={PARTITION}",
                 "--slurm-init-seconds-before-status-checks", "1",
                 "--seconds-between-status-checks", "1", "--max-status-checks-per-second", "10",
                 "--latency-wait", "5"],
                cwd=work, capture_output=True, text=True, timeout=660,
            )  # fmt: skip
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        assert not (work / "results" / "normalized" / "matrix").exists()  # fitted directly
        runs[name] = pq.read_table(work / "results" / "g" / "results.parquet")
        if name == "slurm":
            log = out.stdout + out.stderr
            planned = Counter(re.findall(r"^rule (\w+):$", log, flags=re.M))
            assert planned["matrix_checksum"] == 1 and planned["fit_chunk"] == 2, log[-3000:]
    assert runs["slurm"].num_rows == runs["local"].num_rows == 1400
    for col in runs["local"].column_names:
        a = runs["slurm"][col].to_numpy(zero_copy_only=False)
        b = runs["local"][col].to_numpy(zero_copy_only=False)
        if a.dtype.kind == "f":
            assert_matches(a, b, col, rtol=1e-12)
        else:
            assert (a == b).all(), col

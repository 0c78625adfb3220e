"""The cause of each failed step, one line each, as the last lines of a failed run.

A step that fails writes its cause as the last line of its log, with the fixed prefix
:data:`ERROR_PREFIX` (``stacklm error in step <name>: <what, where, how to fix>``; see
:func:`stacklm.workflow.steps.workflow_step`).  When the run fails, the Snakefile's ``onerror`` calls
:func:`report_failures_at_exit`: it reads which jobs failed (and their logs) from Snakemake's own log
of the run and prints, for each, that line and the log's path, after everything Snakemake prints
itself (at interpreter exit), so a user reads the cause last instead of searching it in the log dump
above.  Pure Python: the Snakefile passes the path of Snakemake's log file.
"""

from __future__ import annotations

import atexit
import re
import sys
from dataclasses import dataclass
from pathlib import Path

#: how a step's log states the cause of its failure (the last such line counts)
ERROR_PREFIX = "stacklm error in step "

_RULE = re.compile(r"^Error in rule (\S+?):\s*$")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")
_LOG_HINT = " (check log file(s) for error details)"


@dataclass
class FailedJob:
    rule: str
    wildcards: str  # "analysis=geography, chunk=0" or ""
    logs: list[str]  # the job's log files, as Snakemake names them (relative to the workdir)


def failed_jobs(snakemake_log) -> list[FailedJob]:
    """The failed jobs of a run, in order, from Snakemake's log file(s) of that run (a path or the
    list Snakemake passes to ``onerror``; their "Error in rule X:" blocks, with the ``wildcards:``
    and ``log:`` fields); one entry per job."""
    paths = [snakemake_log] if isinstance(snakemake_log, str | Path) else list(snakemake_log or [])
    lines = []
    for path in paths:
        try:
            lines += Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except (OSError, TypeError):
            pass
    jobs: list[FailedJob] = []
    seen = set()
    i = 0
    while i < len(lines):
        m = _RULE.match(lines[i])
        i += 1
        if not m:
            continue
        fields = {}
        while i < len(lines):
            f = _FIELD.match(lines[i])
            if not f:
                break
            fields.setdefault(f.group(1), f.group(2))
            i += 1
        logs_text = fields.get("log", "").removesuffix(_LOG_HINT).strip()
        logs = [x.strip() for x in logs_text.split(",") if x.strip()] if logs_text else []
        job = FailedJob(m.group(1), fields.get("wildcards", "").strip(), logs)
        key = (job.rule, job.wildcards, tuple(job.logs))
        if key not in seen:
            seen.add(key)
            jobs.append(job)
    return jobs


def cause_in_log(log_path) -> str | None:
    """The cause a step wrote into its log: the last line starting with :data:`ERROR_PREFIX`, else
    the last line of a Python traceback (``SomeError: message``), else None."""
    try:
        lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith(ERROR_PREFIX):
            return line.strip()
    for k in range(len(lines) - 1, -1, -1):
        if lines[k].startswith("Traceback (most recent call last)"):
            tail = [x for x in lines[k + 1 :] if x.strip() and not x.startswith(" ")]
            if tail:
                return tail[-1].strip()
    return None


def failure_lines(snakemake_log, workdir=".") -> list[str]:
    """One line per failed job: its cause (from its log) and the log's path; the lines to print."""
    workdir = Path(workdir)
    out = []
    for job in failed_jobs(snakemake_log):
        where = f"{job.rule} ({job.wildcards})" if job.wildcards else job.rule
        logs = [workdir / x for x in job.logs]
        cause = next((c for c in map(cause_in_log, logs) if c), None)
        if cause is None:
            cause = f"{ERROR_PREFIX}{where} failed without stating a cause"
        elif job.wildcards and cause.startswith(f"{ERROR_PREFIX}{job.rule}:"):
            cause = f"{ERROR_PREFIX}{where}:" + cause[len(f"{ERROR_PREFIX}{job.rule}:") :]
        elif not cause.startswith(ERROR_PREFIX):
            cause = f"{ERROR_PREFIX}{where}: {cause}"
        if logs:
            out.append(f"{cause}  [log: {', '.join(str(p.resolve()) for p in logs)}]")
        else:
            out.append(f"{cause}  [no log of its own: see Snakemake's messages above]")
    return out


def report_failures_at_exit(snakemake_log, workdir=".", stream=None) -> list[str]:
    """Print :func:`failure_lines` when the interpreter exits (after Snakemake's last messages);
    returns the lines.  Called from the Snakefile's ``onerror``."""
    lines = failure_lines(snakemake_log, workdir)
    if lines:
        n = len(lines)
        text = f"\nstacklm: {n} step{'s' if n > 1 else ''} failed; the cause:\n" + "\n".join(lines)

        def show():
            target = stream if stream is not None else sys.stderr
            print(text, file=target, flush=True)

        atexit.register(show)
    return lines

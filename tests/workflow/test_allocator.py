"""The workflow's jobs reuse freed memory (stacklm.workflow.allocator): a freed 16 MB array's pages
serve the next one without page faults, where glibc's defaults fault them in again."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from stacklm.workflow.allocator import reuse_freed_memory
    assert reuse_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.empty(2 << 20)  # 16 MB
a.fill(1.0)
del a
before = faults()
b = np.empty(2 << 20)
b.fill(2.0)
print(json.dumps({"faults": faults() - before}))
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_a_freed_array_is_reused_without_page_faults():
    def faults(mode):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)["faults"]

    # glibc's defaults: the second array's pages are new (4,096 faults, or a few huge pages where
    # the kernel gives them); tuned, the freed pages are still mapped
    tuned, default = faults("tuned"), faults("default")
    assert tuned < 64 and default > tuned, (tuned, default)


def test_workflow_steps_set_the_allocator(tmp_path):
    from stacklm.workflow.allocator import reuse_freed_memory
    from stacklm.workflow.steps import workflow_step

    with workflow_step("x", tmp_path / "x.log") as log:
        log.info("ok")
    assert reuse_freed_memory() is True  # settings taken (idempotent)

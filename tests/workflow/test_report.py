"""The diagnostic plots, summary.md and the Snakemake HTML report on the embedded example (real
Snakemake), and the report opened in headless Chromium (Debian package ``chromium``) through the
DevTools protocol: no console errors, no network requests, a screenshot that is not blank."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from workflow_helpers import example_config, snakemake, write_config

from stacklm.diagnostics.summary import format_number
from stacklm.plots.names import ANNOTATION_PLOTS, PLOTS

#: a second analysis exercising surrogate variables, the variance trend and robust moderation
SV_ANALYSIS = {
    "formula": "~ geography + age",
    "levels": {"geography": ["Agadir", "Desert", "Mountain"]},
    "test": "geographyDesert",
    "surrogate_variables": 2,
    "moderation": {"trend": True, "robust": True},
}


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("report")
    config = example_config(chunks=3)
    assert config.get("features"), "the example config must name a feature annotation table"
    config["analyses"]["with_svs"] = SV_ANALYSIS
    cfg = write_config(work / "config.yaml", config)
    out = snakemake(work, cfg)
    assert out.returncode == 0, out.stderr[-4000:]
    return work, cfg, list(config["analyses"])


@pytest.fixture(scope="module")
def report(example_run):
    work, cfg, _ = example_run
    out = snakemake(work, cfg, "--report", "results/report.html")
    assert out.returncode == 0, out.stderr[-4000:]
    path = work / "results" / "report.html"
    assert path.exists() and path.stat().st_size > 100_000
    return path


def image_stats(path: Path) -> tuple[float, float, tuple]:
    """Pixel variance, fraction of pixels that are not (near) white, and the dpi of a PNG."""
    with Image.open(path) as img:
        dpi = img.info.get("dpi", (0, 0))
        pixels = np.asarray(img.convert("RGB"), dtype=float)
    ink = (pixels < 235).any(axis=2).mean()
    return float(pixels.var()), float(ink), dpi


def read_data(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def test_every_plot_is_drawn_with_its_data(example_run):
    work, _, analyses = example_run
    expected = dict(PLOTS, **ANNOTATION_PLOTS)
    for analysis in analyses:
        folder = work / "results" / analysis / "plots"
        summary = json.loads((work / "results" / analysis / "summary.json").read_text())
        for stem, suffix in expected.items():
            png = folder / f"{stem}.png"
            variance, ink, dpi = image_stats(png)
            assert variance > 0 and ink > 0.01, f"{png} looks blank ({ink:.3%} ink)"
            assert round(dpi[0]) == 150, f"{png}: {dpi} dpi"
            data = read_data(folder / f"{stem}{suffix}")
            if stem == "sv_associations" and summary["n_surrogate_variables"] == 0:
                assert data.empty, "no SVs: an empty table with the columns"
                assert list(data.columns)[:2] == ["sv", "covariate"]
            else:
                assert len(data) > 0, f"{stem}{suffix} of {analysis} has no rows"

    # structure the plots must show: the example's two hidden confounders are left in the residuals
    # without SVs. The first is in no sample column; the second drives RNA quality (a sheet column not
    # in the design), which must light up one of the two leading residual PCs.
    def rna_quality_in_residuals(analysis):
        assoc = read_data(work / "results" / analysis / "plots" / "pca_associations.tsv")
        lead = assoc[(assoc.matrix == "residuals") & assoc.component.isin(["PC1", "PC2"])]
        return lead[lead.covariate == "rna_quality"]["p_value"].min()

    assert rna_quality_in_residuals("geography") < 1e-5
    svs = read_data(work / "results" / "with_svs" / "plots" / "sv_associations.tsv")
    assert set(svs["sv"]) == {"sv1", "sv2"} and svs["r2"].notna().any()


def test_data_tables_match_the_results(example_run):
    work, _, _ = example_run
    res = pd.read_csv(work / "results" / "geography" / "results.tsv.gz", sep="\t")
    folder = work / "results" / "geography" / "plots"
    volcano = read_data(folder / "volcano.tsv.gz")
    names = [c[len("estimate_") :] for c in res.columns if c.startswith("estimate_")]
    assert list(dict.fromkeys(volcano["coefficient"])) == names
    one = volcano[volcano.coefficient == names[0]]
    assert np.allclose(one["estimate"], res[f"estimate_{names[0]}"], rtol=1e-15)
    assert np.allclose(one["neg_log10_p"], -np.log10(res[f"p_{names[0]}"]), rtol=1e-12)
    hist = read_data(folder / "pvalue_histogram.tsv")
    assert hist["count"].sum() == np.isfinite(res["p_value"]).sum()
    sa = read_data(folder / "sa.tsv.gz")
    assert np.allclose(sa["sqrt_sigma"] ** 2, res["sigma"], rtol=1e-12, equal_nan=True)
    scree = read_data(folder / "pca_scree.tsv")
    for matrix, part in scree.groupby("matrix"):
        assert abs(part["variance_fraction"].sum() - 1) < 1e-8, matrix


def test_summary_md_has_the_numbers(example_run):
    work, _, analyses = example_run
    for analysis in analyses:
        summary = json.loads((work / "results" / analysis / "summary.json").read_text())
        md = (work / "results" / analysis / "summary.md").read_text()
        assert f"| features fitted | {summary['n_features']:,} |" in md
        assert f"| samples | {summary['n_samples']:,} |" in md
        assert f"| surrogate variables | {summary['n_surrogate_variables']} |" in md
        for key in ("pi0", "lambda_gc", "df_prior", "s2_prior"):
            assert f"| {format_number(summary[key])} |" in md, key
        assert f"| `test (fdr)` | {summary['n_significant']:,} |" in md
        assert "## Versions" in md and summary["versions"]["numpy"] in md


# --------------------------------------------------------------------------------------------
# headless Chromium through the DevTools protocol over a pipe (--remote-debugging-pipe)
# --------------------------------------------------------------------------------------------
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def open_in_chromium(
    url: str, screenshot: Path, actions=(), timeout: float = 90.0, settle: float = 2.0
):
    """Load ``url``, wait for the load event and ``settle`` seconds, run each JavaScript expression
    of ``actions`` (``settle`` seconds after each), take a screenshot.  Returns the DevTools events
    (console, exceptions, log entries, network requests), the actions' values and the page's
    text."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    profile = tempfile.mkdtemp(prefix="stacklm-chromium-")
    r_in, w_in = os.pipe()  # our commands -> chromium's fd 3
    r_out, w_out = os.pipe()  # chromium's fd 4 -> our reader
    child_in = fcntl.fcntl(r_in, fcntl.F_DUPFD, 10)
    child_out = fcntl.fcntl(w_out, fcntl.F_DUPFD, 10)
    os.close(r_in)
    os.close(w_out)
    args = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
            "--window-size=1400,1000", "about:blank"]  # fmt: skip
    command = f"exec {shlex.join(args)} 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-"
    proc = subprocess.Popen(
        ["/bin/bash", "-c", command], pass_fds=(child_in, child_out),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(child_in)
    os.close(child_out)
    events: list[dict] = []
    state = {"buffer": b"", "id": 0}

    def read_until(predicate, deadline):
        while time.time() < deadline:
            while b"\0" in state["buffer"]:
                raw, state["buffer"] = state["buffer"].split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    events.append(message)
                if predicate(message):
                    return message
            ready, _, _ = select.select([r_out], [], [], 0.2)
            if ready:
                chunk = os.read(r_out, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium exited")
                state["buffer"] += chunk
        return None

    def call(method, params=None, session=None, wait=60.0):
        state["id"] += 1
        message = {"id": state["id"], "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(w_in, json.dumps(message).encode() + b"\0")
        reply = read_until(lambda m: m.get("id") == message["id"], time.time() + wait)
        assert reply is not None, f"chromium did not answer {method}"
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply.get("result", {})

    try:
        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            call(f"{domain}.enable", session=session)
        call("Page.navigate", {"url": url}, session=session)
        loaded = read_until(lambda m: m.get("method") == "Page.loadEventFired",
                            time.time() + timeout)  # fmt: skip
        assert loaded is not None, f"{url} did not finish loading in {timeout} s"
        read_until(lambda m: False, time.time() + settle)
        results = []
        for expression in actions:
            value = call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                         session=session)["result"].get("value")  # fmt: skip
            results.append(value)
            read_until(lambda m: False, time.time() + settle)
        shot = call("Page.captureScreenshot", {"format": "png"}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        text = call("Runtime.evaluate",
                    {"expression": "document.body.innerText", "returnByValue": True},
                    session=session)["result"].get("value", "")  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
        os.close(w_in)
        os.close(r_out)
        shutil.rmtree(profile, ignore_errors=True)
    return events, results, text


def click_text(text: str) -> str:
    """JavaScript: click the link (or row) whose text is exactly ``text``."""
    return f"""(() => {{
      const hits = [...document.querySelectorAll('*')].filter(
        e => e.children.length === 0 && e.textContent.trim() === {json.dumps(text)});
      if (!hits.length) return 'not found: ' + {json.dumps(text)};
      let e = hits[0];
      while (e && !['A', 'BUTTON', 'TR', 'LI'].includes(e.tagName)) e = e.parentElement;
      (e || hits[0]).click();
      return 'ok';
    }})()"""


def show_file(name: str) -> str:
    """JavaScript: click the 'eye' (show) button of the report's file row containing ``name``."""
    return f"""(() => {{
      const row = [...document.querySelectorAll('tr')].find(r => r.textContent.includes({json.dumps(name)}));
      if (!row) return 'no row for ' + {json.dumps(name)};
      const eye = row.querySelector('a[iconname="eye"]');
      if (!eye) return 'no show button';
      eye.click();
      return 'ok';
    }})()"""


SHOWN_IMAGE = """(() => {
  const imgs = [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 300);
  return imgs.length ? imgs[0].naturalWidth + 'x' + imgs[0].naturalHeight : 'no image shown';
})()"""


def console_problems(events: list[dict]) -> list[str]:
    problems = []
    for e in events:
        method, params = e["method"], e.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append(
                f"exception: {details.get('exception', {}).get('description') or details['text']}"
            )
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            problems.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                         for a in params["args"]))  # fmt: skip
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            problems.append(f"log: {params['entry']['text']} ({params['entry'].get('url', '')})")
        elif method == "Network.loadingFailed":
            problems.append(f"failed request: {params.get('errorText')}")
    return problems


def test_report_opens_in_chromium_without_errors(report, example_run, tmp_path):
    _, _, analyses = example_run
    shot = tmp_path / "report.png"
    events, _, text = open_in_chromium(report.resolve().as_uri(), shot)
    assert console_problems(events) == []
    # self-contained: nothing is fetched but the file itself (and inline data)
    requests = {e["params"]["request"]["url"] for e in events
                if e["method"] == "Network.requestWillBeSent"}  # fmt: skip
    outside = [u for u in requests if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert outside == [], outside
    variance, ink, _ = image_stats(shot)
    assert variance > 10 and ink > 0.005, f"the report screenshot looks blank ({ink:.3%} ink)"
    for analysis in analyses:
        assert analysis in text, f"the report's page does not list {analysis}"
    html = report.read_text(errors="replace")
    for stem in ("pca_associations", "volcano", "sample_density", "summary"):
        assert f"{stem}.png" in html or f"{stem}.html" in html, stem


def test_report_shows_a_plot_in_chromium(report, tmp_path):
    """Navigate as a user does (analysis, section, the show button of a plot): no errors, and the
    plot is displayed (screenshot with content, the image decoded at full size)."""
    shot = tmp_path / "plot.png"
    actions = [
        click_text("geography"),
        click_text("4 Sample structure"),
        show_file("pca_associations.png"),
        SHOWN_IMAGE,
    ]
    events, results, _ = open_in_chromium(report.resolve().as_uri(), shot, actions=actions)
    assert console_problems(events) == []
    assert results[:3] == ["ok", "ok", "ok"], results
    width, height = (int(v) for v in results[3].split("x"))  # 'no image shown' fails here
    with Image.open(report.parent / "geography" / "plots" / "pca_associations.png") as png:
        assert (width, height) == png.size
    variance, ink, _ = image_stats(shot)
    assert variance > 10 and ink > 0.02, f"the plot view looks blank ({ink:.3%} ink)"

"""The math sheet of specs/panoptic.yaml in headless Chromium: no console message, an entry with rendered
MathML for every term that has math, every link resolving, and a screenshot.

Chromium is Debian's `chromium` package (scripts/install-chromium.sh installs it; CI runs that script);
without it the test skips. The page checks itself on load (see the script at the end of
omgen/doc/templates/sheet.html.jinja2) and writes a JSON summary into #om-selfcheck, read here from
`--dump-dom` after a virtual-time budget. Console messages come from `--enable-logging=stderr`: the page
logs nothing when all is well, so any CONSOLE line fails the test.

The screenshot goes to the test's temporary folder; with OMGEN_UPDATE_SCREENSHOTS=1 (or when it is missing)
it also replaces docs/img/panoptic-sheet.png, the picture the README shows.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs/panoptic.yaml"
SCREENSHOT = ROOT / "docs/img/panoptic-sheet.png"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--enable-logging=stderr", "--v=0"]


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/install-chromium.sh "
                                                          "installs Debian's package; CI runs it)")


def run_chromium(*args: str, timeout: float = 60) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="omgen-chromium-") as profile:
        process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # chromium's own process group, started above
            process.communicate()
            pytest.fail(f"chromium did not finish within {timeout} s")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    return out, err


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def selfcheck(page: Path) -> dict:
    dom, err = run_chromium("--virtual-time-budget=5000", "--window-size=1400,1000", "--dump-dom", page.as_uri())
    assert console_messages(err) == [], f"console messages from {page.name}"
    match = re.search(r'<pre id="om-selfcheck">([^<]*)</pre>', dom)
    assert match and match[1], f"the page's self-check did not run: {page.name}"
    return json.loads(match[1].replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    pytest.importorskip("latex2mathml", reason="the 'doc' extra (latex2mathml) is not installed")
    from omgen.compile import build_graph, load, select_variants
    from omgen.doc import render_diff_page, write_docs

    out = tmp_path_factory.mktemp("doc")
    list(write_docs(str(SPEC), ["base", "learnable-centers"], str(out)))
    # the diff page uses the pure-Python graph layout, the others dot when it is installed
    om, diff_page, _, _ = render_diff_page(str(SPEC), "base", "learnable-centers", engine="python")
    (out / om / "diff-base-learnable-centers.html").write_text(diff_page, encoding="utf-8")
    spec = load(SPEC)
    graphs = {v.name: build_graph(spec, v) for v in select_variants(spec, ["base", "learnable-centers"])}
    return out / spec.om, graphs


@pytest.mark.parametrize("page, variant", [("learnable_centers.html", "learnable-centers"), ("base.html", "base"),
                                           ("diff-base-learnable-centers.html", "learnable-centers")])
def test_page_renders_every_term_with_math_and_resolves_every_link(pages, page, variant):
    folder, graphs = pages
    graph = graphs[variant]
    summary = selfcheck(folder / page)
    with_math = sum(1 for t in graph.terms if t.term.winner.math)
    assert summary["errors"] == []
    assert summary["terms"] == len(graph.terms) and summary["missing_panels"] == []
    assert summary["raw_latex"] == 0
    assert summary["terms_with_math"] == with_math > 0
    assert summary["math_rendered"] == with_math, "some <math> has an empty box"
    assert summary["math_native"] == with_math, "the browser did not lay <math> out as MathML"
    assert summary["broken_links"] == []
    assert summary["links"] > 2 * len(graph.terms)  # entry links, graph nodes, code tags
    for href in summary["other_links"]:  # the variant navigation
        assert (folder / href).is_file(), href


def test_screenshot(pages, tmp_path):
    folder, _ = pages
    shot = tmp_path / "panoptic-sheet.png"
    _, err = run_chromium("--virtual-time-budget=3000", "--window-size=1400,1000", f"--screenshot={shot}",
                          (folder / "learnable_centers.html").as_uri())
    assert console_messages(err) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a blank page is a few kB
    if os.environ.get("OMGEN_UPDATE_SCREENSHOTS") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

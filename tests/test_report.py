"""tagger probe and tagger report on a tiny run: the generalisation grid round-trips, and the
report page is self-contained and renders in a browser (headless Chromium, where installed)."""
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from tagger.cli import main
from tagger.cli.probe import format_probe

TINY = ["--widths", "24-12-12", "--epochs", "2", "--train-examples", "200", "--valid-examples", "50",
        "--batch-size", "50", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """Two run directories (one probed, one with a saved evaluation of 50 test examples) and the page comparing them."""
    root = tmp_path_factory.mktemp("report")
    first, second = root / "first", root / "second"
    assert main(["train", "shapes", "--run-dir", str(first), *TINY]) == 0
    assert main(["probe", str(first), "--objects", "2", "3", "--groups", "2", "4", "--iterations", "3",
                 "--examples", "50"]) == 0
    shutil.copytree(first, second)
    (second / "probe.json").unlink()
    assert main(["eval", str(second), "--examples", "50", "--iterations", "2"]) == 0
    cwd = os.getcwd()
    os.chdir(root)  # several runs: the page goes to the current directory
    try:
        assert main(["report", str(first), str(second), "--examples", "50"]) == 0
    finally:
        os.chdir(cwd)
    return first, second, root / "report.html"


def test_probe_writes_the_grid_and_it_round_trips(runs):
    first, _, _ = runs
    result = json.loads((first / "probe.json").read_text())
    assert result["objects"] == [2, 3] and result["groups"] == [2, 4] and result["iterations"] == [1, 2, 3]
    assert {(c["objects"], c["groups"]) for c in result["cells"]} == {(2, 2), (2, 4), (3, 2), (3, 4)}
    assert all(len(c["ami"]) == len(c["ari"]) == len(c["denoising_cost"]) == 3 for c in result["cells"])
    assert result["examples"] == 50 and result["trained"]["groups"] == 4
    markdown = (first / "probe.md").read_text()
    assert format_probe(result) == markdown  # the JSON holds everything the tables show
    assert "(A)**" in markdown and "(C)**" in markdown and "| 4 (C) |" in markdown  # A: 3 obj K=2; C: 2 obj K=4
    assert "B = 4 objects, trained K (trained on 3) (not in this grid)" in markdown


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self.links += [value for key, value in attrs.items() if key in ("src", "href") and tag != "img"]
        self.ids.add(attrs.get("id"))


def test_report_is_self_contained_with_every_section(runs):
    first, second, page = runs
    text = page.read_text()
    parser = _Links()
    parser.feed(text)
    assert not parser.links and not re.search(r"https?://", text)  # nothing fetched, no scripts
    assert len(parser.images) == 7  # curves overlaid, and per run: curves, ranked groupings, removal
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert {"comparison", "config", "curves", "table1a", "groupings", "probe"} <= parser.ids
    assert "from eval_test_n50.json" in text and "computed for this page on the first 50 test examples" in text
    assert "**" not in text and "<b>" in text  # the probe grid, its paper examples in bold
    assert "no probe.json" in text  # the second run was not probed


RENDER_CHECK = """<script>
window.renderErrors = [];
window.addEventListener('error', function (e) {
  window.renderErrors.push(String(e.message || (e.target && e.target.tagName) || 'error')); }, true);
var consoleError = console.error;
console.error = function () { window.renderErrors.push(Array.from(arguments).join(' ')); consoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var out = document.createElement('pre'); out.id = 'render-check';
  out.textContent = JSON.stringify({images: Array.from(document.images).map(function (i) {
    return [i.naturalWidth, i.naturalHeight]; }), errors: window.renderErrors});
  document.body.appendChild(out); });
</script>"""


def _chromium():
    """The browser, or a skip with the reason. TAGGER_INSTALL_CHROMIUM=1 lets the test install
    Debian's package (~70 s with apt-get update on a 2-core machine). Under CI (``CI=true``, where
    .ci/run installs it) a missing browser is a failure, never a skip."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("TAGGER_INSTALL_CHROMIUM") == "1" and shutil.which("apt-get"):
        subprocess.run("apt-get update -qq && apt-get install -y -qq chromium", shell=True, capture_output=True)
        found = shutil.which("chromium")
    if found is None and os.environ.get("CI") == "true":
        pytest.fail("CI must check the report in a real browser: .ci/run installs Debian's chromium")
    if found is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium, or TAGGER_INSTALL_CHROMIUM=1 "
                    "to let this test install it)")
    return found


def test_report_renders_in_headless_chromium(runs, tmp_path):
    """The page loads without console errors and every figure decodes to a non-zero size: a
    copy with a probe script that writes what the browser saw into the DOM, read by --dump-dom."""
    browser = _chromium()
    checked = tmp_path / "checked.html"
    checked.write_text(runs[2].read_text().replace("<head>", "<head>" + RENDER_CHECK, 1))
    done = subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                           "--v=0", "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()],
                          capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="render-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading: {done.stderr[-2000:]}"
    seen = json.loads(found.group(1))
    assert seen["errors"] == [] and "CONSOLE" not in done.stderr
    assert len(seen["images"]) == 7 and all(w > 0 and h > 0 for w, h in seen["images"])

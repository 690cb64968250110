"""Loading a written report in headless Chromium (Debian's package), for the report tests."""

import json
import re
import shutil
import subprocess

import pytest

#: Flags of a quiet, sandbox-free headless Chromium that touches no network.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")

# Injected into a copy of the page: after load, record every image's natural width and
# every table's body rows in an attribute that --dump-dom prints.
_CHECK = """<script>window.addEventListener('load', () => {
  document.documentElement.setAttribute('data-check', JSON.stringify({
    images: [...document.images].map(i => [i.getAttribute('src'), i.complete ? i.naturalWidth : 0]),
    tables: [...document.querySelectorAll('table')].map(t => t.querySelectorAll('tbody tr').length)
  }));
});</script>"""


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is required by this test and is not installed: "
                    "run 'apt-get install -y chromium' as root ('make test' does it)")
    return path


def check_in_chromium(directory, tmp_path):
    """Load ``directory/index.html`` in headless Chromium; return its image and table check."""
    page = (directory / "index.html").read_text()
    probe = directory / "_check.html"
    probe.write_text(page.replace("</body>", _CHECK + "</body>"))
    try:
        run = subprocess.run([_chromium(), *CHROMIUM_FLAGS,
                              f"--user-data-dir={tmp_path / 'chromium-profile'}",
                              "--virtual-time-budget=10000", "--dump-dom",
                              probe.as_uri()],
                             capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    match = re.search(r"data-check=\"([^\"]*)\"", run.stdout)
    assert match, f"chromium printed no check (status {run.returncode}): {run.stderr[-500:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))

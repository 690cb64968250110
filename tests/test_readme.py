"""The README's headline table is the last committed demo run's (``make check-readme``).

``neuroharden demo`` writes its headline to ``OUTPUT/headline.md`` and its stage results
to ``OUTPUT/stages/``; the last committed run's copies are in ``benchmarks/results/demo/``.
The README carries the headline verbatim between two markers. These tests check that
the README's copy is the committed file, that the committed file is what the demo's
code writes from the committed stage results, and that those results were computed
with the demo's current settings.
"""

import json
import re
from pathlib import Path

from neuroharden.sim.app.demo import DEFAULTS, STAGES, stage_key
from neuroharden.sim.app.demo_report import HEADLINE_FILE, headline_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "demo"
#: The README's copy: ``<!-- headline: PATH ... -->``, the text, ``<!-- /headline -->``.
COPY = re.compile(r"^<!-- headline: (?P<path>\S+) [^\n]*-->\n(?P<text>.*?)^<!-- /headline -->$",
                  re.S | re.M)


def readme_copy(readme):
    """``(path, text)`` of the one headline copy in the README text."""
    copies = list(COPY.finditer(readme))
    assert len(copies) == 1, f"the README must hold one headline copy, not {len(copies)}"
    return copies[0]["path"], copies[0]["text"]


def stored_records():
    """The committed stage results as the records of cached stages, in the demo's order."""
    records = {}
    for stage in STAGES:
        stored = json.loads((RESULTS / "stages" / f"{stage.name}.json").read_text())
        records[stage.name] = {"status": "cached", "result": stored["result"],
                               "seconds": stored["seconds"], "key": stored["config"]}
    return records


def test_readme_headline_is_the_committed_demo_headline():
    path, text = readme_copy((ROOT / "README.md").read_text())
    assert path == f"benchmarks/results/demo/{HEADLINE_FILE}"
    assert text == (ROOT / path).read_text()


def test_a_readme_figure_that_differs_fails_the_check():
    readme = (ROOT / "README.md").read_text()
    path, text = readme_copy(readme)
    first_percentage = re.search(r"\d+\.\d+ %", text).group()
    changed = readme.replace(text, text.replace(first_percentage, "12.34 %", 1))
    assert readme_copy(changed)[1] != (ROOT / path).read_text()


def test_committed_headline_is_what_the_demo_writes_from_its_stage_results():
    records = stored_records()
    assert headline_table(records, DEFAULTS) == (RESULTS / HEADLINE_FILE).read_text()


def test_committed_stage_results_have_the_demo_settings():
    # The key of a stage hashes its settings and its needs' keys (as a rerun checks it):
    # a changed DEFAULTS entry that the committed run did not use fails here.
    records = stored_records()
    keys = {}
    for stage in STAGES:
        keys[stage.name] = stage_key(stage, DEFAULTS, keys)
        assert records[stage.name]["key"] == keys[stage.name], stage.name

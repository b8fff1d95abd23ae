"""Reports and docs are read by people on other machines, later: no machine path, no pointer to an issue tracker."""

from __future__ import annotations

import re
import subprocess

from .conftest import ROOT

ABSOLUTE = re.compile(r"(?<![\w.~])/(?:work|tmp|home|root|Users|mnt|scratch)/[\w.-]+")
ISSUE = re.compile(r"\b[Ii]ssues? #?\d+\b|(?<![\w/])#\d{1,4}\b(?!\w)")


def _tracked(*folders: str) -> list:
    out = subprocess.run(["git", "ls-files", *folders], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in out if f.endswith((".md", ".json", ".html", ".txt"))]


def test_no_absolute_path_or_issue_number_in_a_tracked_report_or_doc():
    files = _tracked("reports", "docs", "README.md")
    assert files, "git ls-files found no report"
    bad = [(f.relative_to(ROOT), m.group(0)) for f in files for m in (*ABSOLUTE.finditer(f.read_text()), *ISSUE.finditer(f.read_text()))]
    assert not bad, bad


def test_the_patterns_catch_what_they_are_for():
    assert ABSOLUTE.search("results in /work/main/results") and ABSOLUTE.search("(/tmp/fresh1)")
    assert not ABSOLUTE.search("resources/bases/tiny and src/kdmem/data.py")
    assert ISSUE.search("as issue 12 asked") and ISSUE.search("fixed in #21")
    assert not ISSUE.search("transformers#43701 is upstream") and not ISSUE.search("F1 at 24 tokens")


def test_the_benchmark_tables_are_the_rendering_of_their_json():
    """reports/benchmarks.md's measured sections are drawn from reports/bench/*.json; an edit to either alone is caught."""
    import sys

    proc = subprocess.run([sys.executable, "render_reports.py", "--check"], cwd=ROOT / "benchmarks", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

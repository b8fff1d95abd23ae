"""Redraw the measured sections of reports/benchmarks.md from the raw results in reports/bench/*.json.

`make bench` and `make bench-frontier` write the JSON and the tables together; this script (and the test that
runs it in check mode) keeps the tables from going stale when the JSON or the rendering changes.

    .venv/bin/python benchmarks/render_reports.py          # rewrite the sections
    .venv/bin/python benchmarks/render_reports.py --check  # exit 1 if they differ from the JSON's rendering
"""

from __future__ import annotations

import json
import sys

CHECK = "--check" in sys.argv
sys.argv = sys.argv[:1]  # bench_duckdb, which run_all imports, reads its sample count from argv at import

import bench_cache_frontier  # noqa: E402
import run_all  # noqa: E402
from common import ROOT  # noqa: E402

REPORT = ROOT / "reports" / "benchmarks.md"


def sections() -> list[tuple[str, str, str]]:
    """(begin marker, end marker, rendered text) per measured section."""
    bench = json.loads(run_all.RAW.read_text())
    frontier = json.loads(bench_cache_frontier.RAW.read_text())
    return [(run_all.BEGIN, run_all.END, "\n".join(run_all.render(bench)[2:])),
            (bench_cache_frontier.BEGIN, bench_cache_frontier.END, "\n".join(bench_cache_frontier.render(frontier)))]


def current(begin: str, end: str) -> str:
    return REPORT.read_text().partition(begin)[2].partition(end)[0].strip("\n")


def main(check: bool) -> int:
    stale = [begin for begin, end, text in sections() if current(begin, end) != text.strip("\n")]
    if check:
        for b in stale:
            print(f"stale: the section after {b} differs from its JSON's rendering; run benchmarks/render_reports.py", file=sys.stderr)
        return 1 if stale else 0
    for begin, end, text in sections():
        run_all.write_measured(REPORT, text, begin, end)
    return 0


if __name__ == "__main__":
    sys.exit(main(CHECK))

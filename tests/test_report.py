"""kdmem.report renders what kdmem.analysis wrote (analysis.json) and computes nothing: run on the hand-made
store (tests/store.py), then on the same JSON read back with the store deleted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kdmem import analysis, report
from kdmem import config as kconfig
from kdmem.errors import KdmemError
from kdmem.layout import Figure, Layout
from kdmem.settings import Analysis

from .conftest import MICRO


@pytest.fixture
def analysed(built, tmp_path):
    db_path, _ = built
    cfg = kconfig.validate({**MICRO, "analysis": {**MICRO.get("analysis", {}), "bootstrap": 50}})
    layout = Layout(str(tmp_path / "results"))
    analysis.analyze(db_path, {}, layout, Analysis.of(cfg), cfg["seed"])
    db_path.unlink()  # the report must not need the store
    return json.loads(open(layout.analysis()).read()), layout


def test_the_report_states_every_finding_with_its_verdict(analysed, tmp_path):
    result, layout = analysed
    html = tmp_path / "report.html"
    report.render(result, layout, html)
    text = html.read_text()
    findings = result["pairs"][0]["findings"]
    assert [f["id"] for f in findings] == [f"F{i}" for i in range(1, 9)]
    for f in findings:
        row = re.search(rf"<tr><td>{f['id']}</td>.*?</tr>", text, flags=re.S)
        assert row and f["verdict"] in row.group(0), f["id"]
    # every role the store holds has its rate row, with the count the store was built with (tests/store.py)
    rates = {r["role"]: r for r in result["pairs"][0]["rates"]}
    assert rates["teacher"]["memorized"] == [20] and rates["baseline"]["memorized"] == [20, 16]
    for role in rates:
        assert f"<td>{role}</td>" in text
    # every figure analyze drew is embedded (not linked), each once, and the four every study draws are among them
    drawn = result["pairs"][0]["figures"]
    assert {Figure.RATES, Figure.EXPOSURE, Figure.VENN, Figure.ENTROPY} <= set(drawn)
    assert "<h2>fam / ds</h2>" in text and text.count("data:image/png;base64,") == len(drawn)


def test_the_report_stops_on_a_figure_analyze_drew_but_is_missing(analysed, tmp_path):
    result, layout = analysed
    Path(layout.figure("fam", "ds", Figure.VENN)).unlink()
    with pytest.raises(KdmemError, match=r"fam-ds-venn\.png is missing"):
        report.render(result, layout, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_names_from_the_data_are_escaped(analysed, tmp_path):
    result, layout = analysed
    result["pairs"][0]["family"] = "<script>x</script>"
    result["pairs"][0]["figures"] = []  # this family drew none: the report must not look for its figures
    report.render(result, layout, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    assert "<script>x</script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text


def _mia_row(model, role, auc, lo, hi, source="val"):
    return {"family": "fam", "dataset": "ds", "model": model, "role": role, "label": None, "signal": "loss", "auc": auc, "auc_lo": lo,
            "auc_hi": hi, "tpr_at_1pct_fpr": None, "tpr_lo": None, "tpr_hi": None, "n_members": 40, "n_nonmembers": 200,
            "nonmember_split": source}


def test_the_report_flags_bases_that_separate_members_without_training(analysed, tmp_path):
    """Held-out non-members shifted from D give a base an AUC away from 0.5: the report says the two sets differ
    without training; the validation windows, drawn as D is, leave the base at 0.5 and the report says its interval
    contains it. A TPR that too few non-members would set is shown as –, not as a number."""
    result, layout = analysed
    result["pairs"][0]["mia"] = [_mia_row("base-small", "base", 0.50, 0.46, 0.54), _mia_row("blind", "blind", 0.51, 0.47, 0.55),
                                 _mia_row("base-small", "base", 0.38, 0.34, 0.42, "heldout"),
                                 _mia_row("blind", "blind", 0.59, 0.55, 0.63, "heldout")]
    report.render(result, layout, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    val = text[text.index("validation windows drawn as D is"):text.index("windows of held-out documents (a second")]
    held = text[text.index("windows of held-out documents (a second"):]
    assert "base-small 0.500 [0.460, 0.540] contains 0.5" in val and "excludes 0.5" not in val
    assert "base-small 0.380 [0.340, 0.420] <b>excludes 0.5" in held
    assert "Blind baseline" in held and "0.590 [0.550, 0.630]" in held
    assert "TPR@FPR&lt;1%" in text or "TPR@FPR<1%" in text

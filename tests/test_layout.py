"""The results layout: one template per output, one explicit method per template, parts that stay wildcards."""

from __future__ import annotations

import inspect
import string

import pytest

from kdmem.layout import TEMPLATES, Figure, Layout


def test_unfilled_parts_stay_wildcards_and_filled_ones_are_paths():
    lay = Layout("res")
    assert lay.samples() == "res/{family}/{dataset}/data/{split}.parquet"
    assert lay.samples("tiny", "wiki", "train") == lay.samples(split="train", family="tiny", dataset="wiki") == "res/tiny/wiki/data/train.parquet"
    assert lay.cache(temperature="1.0") == "res/{family}/{dataset}/cache/T1.0"
    assert lay.figure("tiny", "wiki", Figure.VENN) == "res/report/tiny-wiki-venn.png"
    assert lay.log("score-teacher-s0", "tiny", "wiki") == "res/logs/tiny/wiki/score-teacher-s0.log"
    with pytest.raises(TypeError):
        lay.data_stats("a", "b", "c")
    with pytest.raises(TypeError, match="has no part split"):
        lay.path("data_stats", split="train")


def test_every_template_has_its_own_method_with_its_fields_in_order():
    # explicit methods, so go-to-definition finds them; their parameters are the template's fields, in order
    for name, template in TEMPLATES.items():
        method = getattr(Layout, name)
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        assert list(inspect.signature(method).parameters)[1:] == fields, name
    assert {n for n, v in vars(Layout).items() if callable(v) and not n.startswith("_")} == set(TEMPLATES) | {"path", "of", "log", "benchmark"}


def test_every_output_has_its_own_path():
    lay = Layout("r")
    paths = [lay.path(name) for name in TEMPLATES]
    assert len(set(paths)) == len(TEMPLATES)


def test_a_rule_finds_the_results_folder_from_its_input():
    layout = Layout("some/where")
    assert Layout.of("db", layout.db()) == layout
    assert Layout.of("analysis", layout.analysis()) == layout
    with pytest.raises(ValueError, match="not a analysis path"):
        Layout.of("analysis", layout.db())


def test_kdmem_path_prints_the_layout_s_path_and_refuses_an_unknown_part(capsys):
    from kdmem import cli

    assert cli.main(["path", "scratch_base", "family=tiny", "size=large", "--results", "r"]) == 0
    assert capsys.readouterr().out.strip() == Layout("r").scratch_base("tiny", "large")
    assert cli.main(["path", "scratch_base", "famly=tiny", "--results", "r"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no part famly" in err[0]

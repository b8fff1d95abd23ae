"""The extension guides (docs/adding-a-stage.md, docs/adding-a-role.md) checked against the code."""

from __future__ import annotations

import re

from kdmem.roster import roster
from kdmem.vocab import BASE_ROLE, SIZE_OF_ROLE, Label, Role

from .conftest import ROOT

ROLE_NAMED = re.compile(r"\b(?:Role|Label)\.[A-Z_]+\b")


def named_paths(doc: str) -> set[str]:
    """The repository paths a guide names in backticks (a word with a slash and a suffix, or a top-level file)."""
    text = (ROOT / "docs" / doc).read_text()
    return {m for m in re.findall(r"`([\w./-]+)`", text) if "/" in m and "." in m.rsplit("/", 1)[-1] or m == "Snakefile"}


def test_every_path_the_guides_name_exists():
    for doc in ("adding-a-stage.md", "adding-a-role.md"):
        missing = sorted(p for p in named_paths(doc) if not (ROOT / p).exists())
        assert missing == [], (doc, missing)


def role_naming_files() -> set[str]:
    """Files that name a specific role or label outside the vocabulary itself."""
    found = set()
    for sub, pattern in (("src", "**/*.py"), ("rules", "*.smk"), ("benchmarks", "*.py")):
        for f in (ROOT / sub).glob(pattern):
            if ROLE_NAMED.search(f.read_text()):
                found.add(str(f.relative_to(ROOT)))
    return found


def test_the_role_guide_names_every_file_that_names_a_role():
    """A file that starts naming a role (Role.X, Label.X) must be in docs/adding-a-role.md, as a place to edit or as
    one that needs no edit: otherwise the guide's count of places silently goes stale."""
    files = role_naming_files()
    assert "src/kdmem/roster.py" in files and "rules/distill.smk" in files  # the scan finds what it must
    assert files - named_paths("adding-a-role.md") == set()


def test_every_role_has_what_the_role_guide_says_it_needs():
    from kdmem import config as kconfig
    from kdmem.figures import ROLE_COLORS

    assert set(SIZE_OF_ROLE) == set(Role)
    assert {x for x in Label if x not in (Label.BASE_LARGE, Label.BASE_SMALL)} <= set(ROLE_COLORS)
    study = roster(kconfig.load(ROOT / "config.yaml"))
    assert {m.role for m in study.models} == set(Role) and BASE_ROLE not in {m.role for m in study.models}

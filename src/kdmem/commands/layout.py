"""`kdmem path`: a path of the results layout, for the Makefile and shell scripts, so that they never spell one;
`kdmem config-doc`: docs/config.md from the schema."""

from __future__ import annotations

import argparse

from kdmem.commands import common as c


def path_args(p: argparse.ArgumentParser) -> None:
    from kdmem.layout import TEMPLATES

    p.add_argument("name", choices=sorted(TEMPLATES), help="the layout's name of the path (kdmem.layout.TEMPLATES)")
    p.add_argument("parts", nargs="*", metavar="PART=VALUE", help="the template's fields, e.g. family=tiny size=large")
    p.add_argument("--results", required=True, help="the results folder (the config's results:)")


def path(args: argparse.Namespace) -> None:
    from kdmem.errors import KdmemError
    from kdmem.layout import Layout

    parts = dict(kv.split("=", 1) for kv in args.parts if "=" in kv)
    if len(parts) != len(args.parts):
        raise KdmemError(f"give each part as PART=VALUE, not {next(kv for kv in args.parts if '=' not in kv)!r}")
    try:
        print(Layout(args.results).path(args.name, **parts))
    except TypeError as e:
        raise KdmemError(str(e)) from None


def config_doc_args(p: argparse.ArgumentParser) -> None:
    c.option(p, "--out", help="the reference to write (docs/config.md)")


def config_doc(args: argparse.Namespace) -> None:
    from kdmem import schemadoc
    from kdmem.config import load_schema
    from kdmem.io import atomic_path

    with atomic_path(args.out) as tmp:
        tmp.write_text(schemadoc.render(load_schema()))


COMMANDS = [
    c.Command("path", "print a path of the results layout (for the Makefile and scripts)", path_args, path, config=False),
    c.Command("config-doc", "write the config reference (docs/config.md) from the schema", config_doc_args, config_doc, config=False),
]

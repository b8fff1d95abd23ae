"""The `kdmem` command: one subcommand per pipeline stage, each called by one Snakemake rule.

Every subcommand takes its config slice (--config-json from the rule, or --config FILE by hand) and
--log; bad input ends in one line on stderr and exit code 2 (a traceback only with --debug), and no
output is left half-written. The subcommands live in kdmem.commands, one module per stage.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import sys
from pathlib import Path

from kdmem.errors import KdmemError

log = logging.getLogger("kdmem")


def _setup_logging(log_file: str | None, debug: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setLevel(logging.DEBUG if debug else logging.WARNING)
    # The one-line error is printed once by main(); the stderr handler must not repeat it.
    handlers[0].addFilter(lambda r: not getattr(r, "file_only", False))
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="w")
        fh.setLevel(logging.INFO)
        handlers.append(fh)
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)


def build_parser() -> argparse.ArgumentParser:
    from kdmem.commands import STAGES
    from kdmem.commands.common import config_options, log_options

    ap = argparse.ArgumentParser(prog="kdmem", description="Memorization in knowledge distillation: pipeline stages.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for stage in STAGES:
        for cmd in stage.COMMANDS:
            p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
            if cmd.config:
                config_options(p)
            log_options(p)
            if cmd.add_arguments:
                cmd.add_arguments(p)
            p.set_defaults(func=cmd.run)
    return ap


def _os_error_line(e: OSError, out: str | None) -> str:
    # numpy reports a short write on a full disk as "N requested and M written", with no errno.
    short_write = e.errno is None and "requested and" in str(e) and "written" in str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or short_write:
        where = Path(out) if out else Path(e.filename or ".")
        while not where.exists() and where != where.parent:
            where = where.parent
        free = shutil.disk_usage(where).free
        return (f"No space left on device writing {out or e.filename} ({free // 1024} KiB free there); "
                "free space, or point results: at a larger disk, and rerun")
    where = f" ({e.filename})" if e.filename else ""
    return f"{e.strerror or e}{where}; check the path and its permissions"


def main(argv: list[str] | None = None) -> int:
    # Nothing in kdmem may reach a hub unless the user removes this on purpose.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # stderr carries the one-line error; per-file "Loading weights" bars would bury it (training keeps its bar)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from kdmem.launch import distributed_argv, relaunch_distributed

    ap = build_parser()
    argv = argv if argv is not None else distributed_argv()  # inside torchrun: the relaunched command line
    args = ap.parse_args(argv)
    if getattr(args, "nproc", 0) > 1:
        relaunch_distributed(args.nproc, sys.argv[1:] if argv is None else argv)  # returns only inside torchrun
    _setup_logging(getattr(args, "log", None), args.debug)
    try:
        args.func(args)
    except KdmemError as e:
        if args.debug:
            raise
        log.error("%s", e, extra={"file_only": True})
        print(f"kdmem {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # A full disk or quota mid-write: the atomic writers have already removed their temporaries.
        if args.debug:
            raise
        line = _os_error_line(e, getattr(args, "out", None))
        log.error("%s", line, extra={"file_only": True})
        print(f"kdmem {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kdmem {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

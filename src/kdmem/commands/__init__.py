"""The `kdmem` subcommands, one module per pipeline stage. Each module lists its COMMANDS: a
subcommand's argument definition sits beside its body, and the options several commands share are
defined once, in common.py. Modules import only argparse at the top, so `kdmem <cmd> --help` and
every command start without torch."""

from kdmem.commands import analysis, audit, data, distill, layout, logits, mia, models, score

STAGES = (data, models, logits, distill, score, mia, analysis, audit, layout)

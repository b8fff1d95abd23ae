"""The one exception kdmem raises for bad input: the CLI prints it as a single line."""


class KdmemError(Exception):
    """Bad input or a failed precondition. The message says what, where, and what to do."""

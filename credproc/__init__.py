"""quilt-credproc: an AWS credential_process helper for Quilt catalogs.

Kept free of imports beyond what every interpreter start loads: it is loaded on every call of
the hot path.
"""

import os
import sys

__version__ = "0.1.0"


def interrupted_at_start(signum: int, frame: object) -> None:
    """Ctrl-C while the command's own modules load: the one line main would print."""
    os.write(2, b"quilt-credproc: interrupted\n")
    os._exit(130)


# Until cli.main can catch it, a Ctrl-C would end in a traceback from the launcher's import
# line. Only the command's launchers do this; a program importing the package keeps its own
# handler, as does a process started with Ctrl-C ignored (a background job).
if os.path.basename(sys.argv[0] if sys.argv else "").startswith("quilt-credproc"):
    # `signal` would import enum, a quarter of an interpreter start; its C core is loaded.
    import _signal  # type: ignore[import-not-found]  # (no stubs: the same calls as signal)

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, interrupted_at_start)

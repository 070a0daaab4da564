"""Where quilt-credproc keeps its files.

The hot path must not import platformdirs (it costs more than the interpreter's own start-up),
so on Linux the folder is worked out here the way platformdirs does; a test holds the two equal.
"""

from __future__ import annotations

import os
import sys

APP_NAME = "quilt-credproc"


def data_dir() -> str:
    """The folder holding one login record per registry."""
    if sys.platform == "linux":
        base = os.environ.get("XDG_DATA_HOME", "").strip()
        # The XDG spec says a relative path is to be ignored: the store must not move with the
        # working directory. (platformdirs takes it as it is.)
        if not os.path.isabs(base):
            base = os.path.expanduser("~/.local/share")
        return os.path.join(base, APP_NAME)
    import platformdirs

    return platformdirs.user_data_dir(APP_NAME, appauthor=False)


def quilt3_data_dir() -> str:
    """quilt3's own folder, where its `auth.json` lives (read, never written)."""
    import platformdirs

    return platformdirs.user_data_dir("Quilt", "QuiltData")

"""Writing a file so that a reader sees either the old content or the new, never half of it.

The text goes to a temporary file (mode 0600) in the target's own directory, which is then
renamed over the target: a rename within one file system is atomic. Reports, baselines and the
parser cache are written this way.
"""
from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str, *, temp_prefix: str | None = None, temp_suffix: str = "") -> None:
    """Write `text` (UTF-8) to `path` via a temporary file named `<temp_prefix>…<temp_suffix>`.

    The temporary file is removed again if anything fails; the error is raised.
    """
    import tempfile  # only writers need it, and most runs write nothing

    prefix = temp_prefix if temp_prefix is not None else f".{path.name}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=temp_suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

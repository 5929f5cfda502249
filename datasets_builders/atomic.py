"""The one way tunechat writes files and directories: into a temporary sibling that is renamed
over the target only when complete, so a crash, a full disk or a bad record never leaves half
an output (or destroys the previous one before the new one is whole).

Files get the permissions an ordinary `open(path, "w")` would give (0666 less the umask), not
mkstemp's private 0600."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `path` ("w" text UTF-8 with LF line ends, or "wb"); on a clean
    exit it replaces `path`, on an exception it is removed and `path` is left as it was."""
    path = Path(path)
    with made_parents(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            text = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
            with os.fdopen(fd, mode, **text) as handle:
                yield handle
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_file(path) as handle:
        handle.write(text)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary directory beside `path` to fill; on a clean exit it replaces `path` (an
    existing `path` is removed first), on an exception it is removed."""
    path = Path(path)
    with made_parents(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextmanager
def made_parents(path: str | os.PathLike) -> Iterator[None]:
    """Make `path`'s missing parent directories; if the block fails, remove the ones made here
    (when still empty), so a failed write into a new folder leaves no empty folder behind."""
    made = [parent for parent in Path(path).parents if not parent.exists()]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for parent in made:  # deepest first
            with suppress(OSError):
                parent.rmdir()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

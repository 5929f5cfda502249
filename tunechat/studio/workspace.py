"""The studio's workspace: one folder that holds everything the pages read and write.

    WORKSPACE/data/      uploads and the data built from them (JSONL)
    WORKSPACE/runs/RUN/  one training run: `tunechat train --output` (adapter/, checkpoints/, logs/),
                         its job.log and job-status.json
    WORKSPACE/models/M/  merged models
    WORKSPACE/exports/   GGUF files
    WORKSPACE/.studio/   the background job's record and lock

Every path a page is given goes through `Workspace.path`, which refuses absolute paths, `..` and
links out of the folder; uploaded names go through `safe_name`."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from datasets_builders.atomic import atomic_file
from datasets_builders.errors import DataError

FOLDERS = ("data", "runs", "models", "exports", ".studio")
UPLOAD_SUFFIXES = (".xlsx", ".csv", ".tsv", ".jsonl", ".json")
MAX_UPLOAD_MB = 50


def safe_name(name: str, suffixes: tuple[str, ...] = UPLOAD_SUFFIXES) -> str:
    """A file name safe to write in the workspace: no folders, no leading dot, letters (any
    script), digits, `.`, `-` and `_` only, and one of `suffixes`."""
    base = unicodedata.normalize("NFKC", re.split(r"[\\/]", name)[-1]).strip()
    base = re.sub(r"[^\w.\-]+", "_", base).lstrip("._")[-120:]
    if not base.lower().endswith(suffixes):
        raise DataError(f"{name!r}: not a data file (expected {', '.join(suffixes)})")
    return base


class Workspace:
    """The folder the studio works in, made with its sub-folders on first use."""

    def __init__(self, root: str | Path, max_upload_mb: float = MAX_UPLOAD_MB) -> None:
        self.root = Path(root).expanduser().resolve()
        self.max_upload_mb = max_upload_mb
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def path(self, relative: str | Path) -> Path:
        """`relative` inside the workspace, or a DataError: absolute paths, `..` and links that
        lead out of it are refused."""
        given = Path(relative)
        if given.is_absolute() or ".." in given.parts:
            raise DataError(f"{relative}: only paths inside the workspace are allowed (no absolute paths, no '..')")
        resolved = (self.root / given).resolve()
        if not resolved.is_relative_to(self.root):
            raise DataError(f"{relative}: leads out of the workspace")
        return resolved

    def rel(self, path: str | Path) -> str:
        """A workspace path as the pages show it and as commands run from the workspace take it."""
        return str(Path(path).resolve().relative_to(self.root))

    def save_upload(self, name: str, data: bytes) -> Path:
        """An uploaded file, written atomically under data/ with a safe name (an existing file of
        that name is replaced: uploading again is how a user sends a corrected sheet)."""
        if len(data) > self.max_upload_mb * 2**20:
            raise DataError(f"{name}: {len(data) / 2**20:.1f} MB is over the {self.max_upload_mb:g} MB upload limit")
        target = self.path(Path("data") / safe_name(name))
        with atomic_file(target, "wb") as handle:
            handle.write(data)
        return target

    def data_files(self) -> list[str]:
        """Everything under data/ that the Data page can open."""
        return sorted(self.rel(p) for p in (self.root / "data").rglob("*") if p.is_file() and p.suffix.lower() in UPLOAD_SUFFIXES)

    def runs(self) -> list[str]:
        """Training runs, newest first."""
        found = [p for p in (self.root / "runs").iterdir() if p.is_dir()]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]

    def adapters(self) -> list[str]:
        """Runs that have an adapter (trained to the end, or stopped), newest first."""
        return [f"runs/{run}/adapter" for run in self.runs() if (self.root / "runs" / run / "adapter" / "adapter_config.json").is_file()]

    def merged_models(self) -> list[str]:
        return sorted(self.rel(p.parent) for p in (self.root / "models").glob("*/config.json"))

    def exports(self) -> list[str]:
        return sorted(self.rel(p) for p in (self.root / "exports").glob("*.gguf"))

    def chat_models(self) -> dict[str, tuple[str | None, str | None]]:
        """Every model of the workspace, as the chat page offers them: label -> (model, adapter).
        An adapter runs on its own base (its tunechat.json names it)."""
        models: dict[str, tuple[str | None, str | None]] = {"embedded SmolLM2-135M-Instruct": (None, None)}
        models |= {f"{a} (adapter)": (None, str(self.path(a))) for a in self.adapters()}
        models |= {f"{m} (merged)": (str(self.path(m)), None) for m in self.merged_models()}
        models |= {f"{g} (GGUF)": (str(self.path(g)), None) for g in self.exports()}
        return models

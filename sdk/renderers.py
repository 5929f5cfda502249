"""Renderers for training records that the chat template cannot render, found by kind.

The engine room never imports the layers above it, yet tool-call records must be rendered by
the Lagent agent's own prompt code (train/serve parity). So the agents package registers its
renderer here when it is imported (`import agents`, which `tunechat` does), and training looks
it up by the record's kind. Each renderer comes with a version (a digest of the code that shapes
its text) that keys the tokenization cache: changing a renderer re-tokenizes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sdk.errors import TunechatError

RecordRenderer = Callable[[dict[str, Any]], list[tuple[str, bool]]]  # a record → (text, trainable) pieces


@dataclass(frozen=True)
class _Renderer:
    render: RecordRenderer
    version: str


_REGISTRY: dict[str, _Renderer] = {}


def register_record_renderer(kind: str, render: RecordRenderer, version: str) -> None:
    """Make `render` the renderer of `kind` records (registering again replaces it)."""
    _REGISTRY[kind] = _Renderer(render, version)


def record_renderer(kind: str) -> RecordRenderer:
    """The renderer registered for `kind`, or a TunechatError that says how to get one."""
    if kind not in _REGISTRY:
        raise TunechatError(f"{kind} records (tool calls) are rendered by the agents package: `import agents` "
                            "before training (pip install 'tunechat[agents]'); the tunechat command does this itself")
    return _REGISTRY[kind].render


def renderer_versions() -> str:
    """The registered renderers and their versions, as one string for cache keys."""
    return ",".join(f"{kind}={entry.version}" for kind, entry in sorted(_REGISTRY.items()))

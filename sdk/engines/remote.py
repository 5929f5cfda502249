"""`RemoteEngine`: the engine interface (`BaseEngine`) over any OpenAI-compatible server — `tunechat serve`,
vLLM, LMDeploy — so chat, the web demo and the agents run unchanged against a model served
elsewhere (on GPUs, batched, for many users). `sdk.load("http://host:8000/v1")` returns one.

Conversations go to `/v1/chat/completions` (the server applies the model's template);
raw prompts go to `/v1/completions` (for the agents, whose prompts must stay byte-exact).
Everything streams, so `stream()` yields pieces as the server produces them. Only httpx is
needed: no `openai` package at run time."""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generator, Iterator

from sdk.engines.base import BaseEngine, Generation
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig
from sdk.templates import Message


class RemoteEngine(BaseEngine):
    """A served model with the engine interface (`BaseEngine`). Thread-safe (one pooled HTTP
    client); the server decides how concurrent requests share the model.

    system: a system prompt to send with conversations that bring none; None leaves the
    choice to the server (tunechat serve and most chat templates then apply the model's own).
    api_key: default $TUNECHAT_API_KEY, then $OPENAI_API_KEY.
    top_k and repetition_penalty are sent as the extensions vLLM, LMDeploy and tunechat accept."""

    path = None  # not a local model

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        system: str | None = None,
        stop_words: list[str] | None = None,
        generation: GenerationConfig | None = None,
        timeout: float = 600.0,
    ):
        try:
            import httpx
        except ModuleNotFoundError:
            raise TunechatError("a server URL needs httpx: pip install 'tunechat[serve]'") from None

        api_key = api_key or os.environ.get("TUNECHAT_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.base_url = base_url.rstrip("/")
        self.system = system
        self.stop_words = list(stop_words or [])
        self.generation = generation or GenerationConfig()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url + "/", headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=10.0))
        cards = {card["id"]: card for card in self._get_models()}
        if model is None:
            if len(cards) != 1:
                raise TunechatError(f"{self.base_url} serves {len(cards)} models ({', '.join(cards)}): choose one with model=")
            model = next(iter(cards))
        elif model not in cards:
            raise TunechatError(f"{self.base_url} does not serve {model!r}; it serves: {', '.join(cards)}")
        self.name = model
        # vLLM and tunechat report the context length; other servers may not (None: unknown).
        self.context_length: int | None = cards[model].get("max_model_len")

    def stream(self, messages: list[Message], config: GenerationConfig | None = None, **overrides: Any) -> Generation:
        """Answer a conversation, piece by piece (the server applies the model's template)."""
        settings = self.settings(config, **overrides)
        return self._generation("chat/completions", {"messages": self.with_system(messages)}, settings)

    def chat_many(self, conversations: list[list[Message]], config: GenerationConfig | None = None,
                  batch_size: int = 128, **overrides: Any) -> list[Generation]:
        """Answer many conversations, up to `batch_size` (at most 16) requests in flight at once:
        a batching server (vLLM, LMDeploy) answers them together; `tunechat serve` queues them.
        Answers come back in the conversations' order."""
        settings = self.settings(config, **overrides)
        with ThreadPoolExecutor(max_workers=max(1, min(batch_size, 16))) as pool:
            return list(pool.map(lambda messages: self._answered(messages, settings), conversations))

    def generate(self, prompt: str, config: GenerationConfig | None = None, **overrides: Any) -> Generation:
        """Continue a raw prompt (no template applied), through /v1/completions."""
        if not prompt:
            raise TunechatError("the prompt is empty")
        return self._generation("completions", {"prompt": prompt}, self.settings(config, **overrides))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RemoteEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteEngine({self.base_url!r}, model={self.name!r})"

    # ---- HTTP ------------------------------------------------------------------------------------

    def _get_models(self) -> list[dict[str, Any]]:
        import httpx

        try:
            response = self._http.get("models")
        except httpx.HTTPError as exc:
            raise TunechatError(f"cannot reach {self.base_url} ({exc}): is the server running?") from None
        _check(response, self.base_url)
        return response.json().get("data") or []

    def _generation(self, path: str, body: dict[str, Any], settings: GenerationConfig) -> Generation:
        return Generation(lambda out: self._pieces(path, {**body, **self._sampling(settings)}, out))

    def _sampling(self, s: GenerationConfig) -> dict[str, Any]:
        """GenerationConfig → request fields. Special tokens are kept (the agents parse them)."""
        body: dict[str, Any] = {"model": self.name, "max_tokens": s.max_new_tokens, "temperature": s.temperature,
                                "top_p": s.top_p, "stream": True, "stream_options": {"include_usage": True},
                                "skip_special_tokens": False}
        stop = [*s.stop_words, *self.stop_words]
        extras = {"stop": stop or None, "seed": s.seed, "top_k": s.top_k or None,
                  "repetition_penalty": s.repetition_penalty if s.repetition_penalty != 1.0 else None}
        return {**body, **{k: v for k, v in extras.items() if v is not None}}

    def _pieces(self, path: str, body: dict[str, Any], out: Generation) -> Generator[str, None, None]:
        """Stream one request; fills `out` as Engine's decode loop does. Closing the generation
        closes the connection, which stops the server's work on it."""
        import httpx

        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                _check(response, self.base_url)
                for event in _events(response.iter_lines()):
                    usage = event.get("usage")
                    if usage:
                        out.prompt_tokens = usage.get("prompt_tokens", 0)
                        out.completion_tokens = usage.get("completion_tokens", 0)
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
                        if piece:
                            out.text += piece
                            yield piece
                        out.finish_reason = choice.get("finish_reason") or out.finish_reason
        except httpx.HTTPError as exc:
            raise TunechatError(f"{self.base_url}: the request failed ({exc})") from None


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, up to `data: [DONE]`."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments, event names
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if "error" in event:
            raise TunechatError(f"the server failed: {_message(event)}")
        yield event


def _check(response: Any, base_url: str) -> None:
    if response.status_code >= 400:
        try:
            detail = _message(response.json())
        except ValueError:
            detail = response.text[:200]
        raise TunechatError(f"{base_url}: {response.status_code} {detail}")


def _message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or body.get("detail") or body.get("message") or body) if isinstance(body, dict) else str(body)

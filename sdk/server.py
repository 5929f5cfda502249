"""The OpenAI-compatible HTTP server behind `tunechat serve`: `GET /v1/models`,
`POST /v1/chat/completions`, `POST /v1/completions` (streamed over SSE or not) and `GET /health`.

Chat requests go through the served model's own template, system prompt and stop words
(`Engine.render`), exactly as in-process chat does; `/v1/completions` continues a raw prompt
(`Engine.generate`), so a client that renders its own prompts (the Lagent agent) keeps them
byte-exact.

Concurrency: generation is *serialised*. One worker thread owns the model and runs requests one
at a time, in arrival order, while the event loop keeps accepting, validating and streaming.
Why not batch: there is one model and one KV cache (reused across turns of a chat), and on a CPU
the decode step is memory-bound and already uses every core, so batching buys no throughput on
2 cores while it would cost latency and the prefix cache. Serving many users on GPUs is what vLLM
and LMDeploy are for; `sdk.load(url)` talks to them the same way (docs/serving.md).

Errors are OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with a 4xx status
for anything the client can fix."""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, ClassVar, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from sdk.engines import Engine, Generation
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig
from sdk.tool_calls import ToolCalling, ToolReply, ToolRequestError

# Request fields that change the result in ways this server cannot honour: refused unless
# they are given with a value that asks for nothing (false, 0, empty, null).
UNSUPPORTED = ("logprobs", "top_logprobs", "echo", "suffix", "functions", "function_call", "logit_bias",
               "presence_penalty", "frequency_penalty")


class APIError(Exception):
    """An error answered as OpenAI does: a status code and `{"error": {...}}`."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self) -> JSONResponse:
        body = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return JSONResponse({"error": body}, status_code=self.status)


# ---- requests --------------------------------------------------------------------------------

class StreamOptions(BaseModel):
    include_usage: bool = False


class _Request(BaseModel):
    """The fields both endpoints share. Unknown fields are accepted and ignored, as vLLM does
    (clients send vendor extensions such as `skip_special_tokens`); see UNSUPPORTED."""

    model_config = ConfigDict(extra="allow")
    prompt_field: ClassVar[str]  # where the prompt is, for errors about its length

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)  # vLLM / LMDeploy extension; -1 or 0 = off
    repetition_penalty: float | None = Field(None, gt=0)  # likewise
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**64)  # what torch's generator takes
    n: int = 1
    best_of: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("n", "best_of")
    @classmethod
    def _one(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only 1 is supported (one completion per request)")
        return value

    def check_supported(self) -> None:
        for name in UNSUPPORTED:
            if (self.model_extra or {}).get(name):
                raise APIError(400, f"{name} is not supported by this server", param=name, code="unsupported_parameter")

    def settings(self, engine: Engine, prompt_tokens: int) -> GenerationConfig:
        """The request's sampling fields over the server's defaults; the length limit fits the
        context: an explicit max_tokens that does not fit is an error, a default one shrinks."""
        room = engine.context_length - prompt_tokens
        if room < 1:
            raise APIError(400, f"the prompt is {prompt_tokens} tokens but the model's context is "
                           f"{engine.context_length}", param=self.prompt_field, code="context_length_exceeded")
        asked = self.max_tokens or self.max_completion_tokens
        if asked is not None and asked > room:
            raise APIError(400, f"the prompt ({prompt_tokens} tokens) plus max_tokens ({asked}) exceeds the model's "
                           f"context ({engine.context_length})", param="max_tokens", code="context_length_exceeded")
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return engine.settings(
            max_new_tokens=asked or min(engine.generation.max_new_tokens, room),
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=0 if self.top_k == -1 else self.top_k,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
            stop_words=[*engine.generation.stop_words, *stop],  # the server's own stop words always apply
        )


class _TextPart(BaseModel):
    type: Literal["text"]
    text: str


class _Function(BaseModel):
    name: str
    arguments: str


class _ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: _Function


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_TextPart] | None = None
    tool_calls: list[_ToolCall] | None = None  # an assistant's calls
    tool_call_id: str | None = None  # a tool result's call

    @model_validator(mode="after")
    def _content_or_calls(self) -> "ChatMessage":
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (only an assistant message with tool_calls may omit it)")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)

    def as_message(self) -> dict[str, str]:
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}

    def as_openai(self) -> dict[str, Any]:
        """The message with its tool fields, for the tool-calling renderer."""
        return {"role": self.role, "content": self.text(), "tool_call_id": self.tool_call_id,
                "tool_calls": [call.model_dump() for call in self.tool_calls or []]}


class ChatRequest(_Request):
    prompt_field = "messages"
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None

    def uses_tools(self) -> bool:
        return bool(self.tools) or any(m.role == "tool" or m.tool_calls for m in self.messages)


class CompletionRequest(_Request):
    prompt_field = "prompt"
    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _single(cls, value: str | list[str]) -> str:
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError("give one prompt (a string) per request")
            return value[0]
        return value


# ---- responses -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Shape:
    """How one endpoint's response objects look (chat and text completions differ only here)."""

    object: str
    chunk_object: str
    id_prefix: str
    chat: bool

    def choice(self, text: str, finish_reason: str | None, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if not self.chat:
            return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            message = {"role": "assistant", "content": text or None, "tool_calls": tool_calls}
        return {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}

    def chunk_choice(self, text: str | None, finish_reason: str | None) -> dict[str, Any]:
        if self.chat:
            body = {"delta": {} if text is None else {"content": text}}
        else:
            body = {"text": text or ""}
        return {"index": 0, **body, "logprobs": None, "finish_reason": finish_reason}


CHAT = _Shape("chat.completion", "chat.completion.chunk", "chatcmpl", chat=True)
TEXT = _Shape("text_completion", "text_completion", "cmpl", chat=False)


def _usage(generation: Generation) -> dict[str, int]:
    return {"prompt_tokens": generation.prompt_tokens, "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens}


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


# ---- the one generation thread ---------------------------------------------------------------

_END = object()


class Worker:
    """The one thread that runs generations, one at a time, in the order they were asked for.
    Pieces cross to the event loop through a per-request asyncio queue, so a stream never
    blocks the loop; a consumer that goes away (client disconnected) stops its generation at the
    next token, or before it starts if it was still waiting its turn."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # A daemon thread: a generation in flight never keeps a stopping server alive.
        threading.Thread(target=self._loop, name="tunechat-generate", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self._jobs.get()()

    async def pieces(self, generation: Generation) -> AsyncIterator[str]:
        """Run `generation` on the worker thread and yield its pieces as they come."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        abandoned = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:  # the loop is gone (server shutting down)
                abandoned.set()

        def job() -> None:
            try:
                while not abandoned.is_set():  # checked before the first token too
                    put(next(generation))
            except StopIteration:
                pass
            except Exception as exc:  # handed to the request that asked, not the worker
                put(exc)
            finally:
                generation.close()  # frees the model (and resets its cache) when stopped early
                put(_END)

        self._jobs.put(job)
        try:
            while (item := await inbox.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            abandoned.set()


# ---- the app ---------------------------------------------------------------------------------

def create_app(engine: Engine, api_key: str | None = None, model_name: str | None = None,
               tool_calling: ToolCalling | None = None) -> FastAPI:
    """The ASGI app serving `engine` under the name `model_name` (default: the engine's).
    With `api_key`, every endpoint but /health wants `Authorization: Bearer <api_key>`.
    With `tool_calling` (`agents.openai_tools.OpenAITools` for the model's protocol), chat
    requests may carry `tools`, `tool_choice`, assistant `tool_calls` and `role: "tool"`
    messages; without it they are refused with a 400."""
    name = model_name or engine.name
    created = int(time.time())
    worker = Worker()

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise APIError(401, "a valid API key is needed: send 'Authorization: Bearer <key>'",
                           code="invalid_api_key")

    app = FastAPI(title="tunechat", description="OpenAI-compatible API over a tunechat model")
    _install_error_handlers(app)
    guarded = [Depends(authorize)]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.get("/v1/models", dependencies=guarded)
    async def models() -> dict[str, Any]:
        card = {"id": name, "object": "model", "created": created, "owned_by": "tunechat",
                "max_model_len": engine.context_length}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", dependencies=guarded)
    async def chat_completions(request: Request) -> Any:
        body = await _parse(request, ChatRequest)
        if body.uses_tools():
            if tool_calling is None:
                raise APIError(400, "this server was started without tool calling: install 'tunechat[agents]' and "
                               "restart it", param="tools", code="unsupported_parameter")
            specs = body.tools or []
            try:
                prompt = tool_calling.prompt([m.as_openai() for m in body.messages], specs, body.tool_choice)
            except ToolRequestError as exc:
                raise APIError(400, str(exc), param=exc.param, code="invalid_value") from None
            turn = _ToolTurn(tool_calling, prompt.prefill, specs, body.tool_choice != "none")
            return await respond(body, prompt.text, CHAT, turn, prompt.stop_words)
        prompt = engine.render([m.as_message() for m in body.messages])
        return await respond(body, prompt, CHAT)

    @app.post("/v1/completions", dependencies=guarded)
    async def completions(request: Request) -> Any:
        body = await _parse(request, CompletionRequest)
        return await respond(body, body.prompt, TEXT)

    async def respond(body: _Request, prompt: str, shape: _Shape, turn: _ToolTurn | None = None,
                      tool_stops: tuple[str, ...] | list[str] = ()) -> Any:
        """Validate everything before answering, so every client error is a 4xx, streamed or not."""
        if body.model not in (None, name):
            raise APIError(404, f"the model {body.model!r} does not exist: this server serves {name!r}",
                           param="model", code="model_not_found")
        body.check_supported()
        settings = body.settings(engine, len(engine.encode(prompt)))
        settings = settings.replace(stop_words=[*settings.stop_words, *tool_stops])
        generation = engine.generate(prompt, settings)  # lazy: nothing runs until the worker iterates it
        head = {"id": f"{shape.id_prefix}-{uuid.uuid4().hex}", "created": int(time.time()), "model": name}
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            events = _stream_events(worker.pieces(generation), generation, {**head, "object": shape.chunk_object}, shape,
                                    usage, turn)
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        text = "".join([piece async for piece in worker.pieces(generation)])
        if turn is None:
            choice = shape.choice(text, generation.finish_reason)
        else:
            reply = turn.understood(text)
            choice = shape.choice(reply.content, "tool_calls" if reply.tool_calls else generation.finish_reason,
                                  reply.tool_calls)
        return {**head, "object": shape.object, "choices": [choice], "usage": _usage(generation)}

    return app


@dataclass
class _ToolTurn:
    """A tools request's reply in the making: the reply is the prefill plus what is generated."""

    calling: ToolCalling
    prefill: str
    tools: list[Any]
    calls_allowed: bool  # False for tool_choice "none"

    def understood(self, generated: str) -> ToolReply:
        reply = self.calling.parse(self.prefill + generated, self.tools)
        if reply.tool_calls and not self.calls_allowed:
            return ToolReply(content=self.prefill + generated)
        return reply


async def _stream_events(pieces: AsyncIterator[str], generation: Generation, head: dict[str, Any],
                         shape: _Shape, include_usage: bool, turn: _ToolTurn | None = None) -> AsyncIterator[str]:
    """The SSE body: (chat: a role chunk), a chunk per piece, a finishing chunk, usage, [DONE].
    With tools, content streams as far as it is surely prose; once the reply is complete, its
    remaining content and then its tool calls follow, as OpenAI streams them."""
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return _sse({**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]})

    try:
        if shape.chat:
            yield chunk({"role": "assistant", "content": ""})
        generated = sent = ""
        async for piece in pieces:
            if turn is None:
                yield _sse({**head, "choices": [shape.chunk_choice(piece, None)]})
                continue
            generated += piece
            prose = turn.calling.content(turn.prefill + generated)
            if len(prose) > len(sent) and prose.startswith(sent):
                yield chunk({"content": prose[len(sent):]})
                sent = prose
        finish = generation.finish_reason
        if turn is not None:
            reply = turn.understood(generated)
            if reply.content.startswith(sent) and len(reply.content) > len(sent):
                yield chunk({"content": reply.content[len(sent):]})
            for index, call in enumerate(reply.tool_calls):
                function = call["function"]
                yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": function["name"], "arguments": ""}}]})
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]})
            finish = "tool_calls" if reply.tool_calls else finish
        yield _sse({**head, "choices": [shape.chunk_choice(None, finish)]})
        if include_usage:
            yield _sse({**head, "choices": [], "usage": _usage(generation)})
    except Exception as exc:  # the status line is sent already: report in the stream, as vLLM does
        error = exc if isinstance(exc, APIError) else APIError(500, f"generation failed: {exc}", type="server_error")
        yield _sse({"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}})
    finally:
        await pieces.aclose()  # stops the generation when the client went away
    yield "data: [DONE]\n\n"


async def _parse(request: Request, model: type[_Request]) -> Any:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from None
    return model.model_validate(data)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(TunechatError)
    async def tunechat_error(request: Request, exc: TunechatError) -> JSONResponse:
        return APIError(400, str(exc)).response()

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: ValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        message = f"{param}: {first['msg']}" if param else first["msg"]
        return APIError(400, message, param=param, code="invalid_value").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return APIError(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None).response()

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        return APIError(500, f"internal error: {type(exc).__name__}: {exc}", type="server_error").response()


# ---- running it ------------------------------------------------------------------------------

def listen(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A socket bound to host:port (0 picks a free port). Bound before the model loads, so a
    port in use fails at once, and a client connecting early waits instead of being refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TunechatError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port or --host") from None
    sock.listen(2048)
    return sock


def serve(app: FastAPI, sock: socket.socket, *, log_level: str = "info", ready: Callable[[str], None] | None = None) -> None:
    """Run `app` with uvicorn on `sock` (from `listen`) until Ctrl-C; `ready(url)` is called once
    the server accepts requests, with the /v1 base URL."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if sock.family == socket.AF_INET6 else host}:{port}/v1"

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if ready is not None and not self.should_exit:
                ready(url)

    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=3)
    _Server(config).run(sockets=[sock])


class ServerProcess:
    """`tunechat serve ARGS` in a child process, on a free localhost port unless ARGS name one:
    for tests, benchmarks and notebooks. Use as a context manager; `url` is the /v1 base URL,
    set once the server accepts requests. The server's log goes to `log` (a temporary file by
    default, quoted in the error if it fails to start)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, startup_timeout: float = 300):
        self.args = ["--port", "0", *args] if "--port" not in args else list(args)
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> "ServerProcess":
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([sys.executable, "-m", "tunechat.cli", "serve", *self.args], stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, env=self.env)
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.process.stdout], daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.url:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            found = re.search(r"https?://\S+/v1", line)
            if found:
                self.url = found.group(0)
            elif self.process.poll() is not None or time.monotonic() > deadline:
                self._stop()
                self.log.seek(0)
                tail = self.log.read()[-2000:]
                self.log.close()
                raise TunechatError(f"`tunechat serve {' '.join(self.args)}` did not start:\n{tail}")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop()
        self.log.close()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # a graceful stop, as Ctrl-C
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

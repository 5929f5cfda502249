"""`tunechat serve [MODEL]`: serve a model over an OpenAI-compatible HTTP API.

Endpoints: GET /v1/models, POST /v1/chat/completions and /v1/completions (streamed over SSE when
asked), GET /health. Any OpenAI client works, e.g. with the `openai` package:
  OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="KEY").chat.completions.create(...)
and so does tunechat itself: `tunechat chat http://127.0.0.1:8000/v1`, `sdk.load(url)`.

The generation flags set the server's defaults; a request's own fields override them. Requests
are answered one at a time (one model on one machine); for many users on GPUs, serve the merged
model with vLLM or LMDeploy instead (see docs/serving.md).

OpenAI function calling: chat requests may carry `tools`, `tool_choice`, assistant `tool_calls`
and `role: "tool"` messages. They are rendered through the agent protocol the model was tuned
with (`--protocol`), exactly as the Lagent agent prompts it, and the model's call comes back as
`tool_calls` (docs/serving.md says what each protocol supports)."""
from __future__ import annotations

import argparse
import os

from agents import PROTOCOLS
from sdk.errors import TunechatError
from sdk.tool_calls import ToolCalling
from tunechat.options import add_generation_args, add_model_args, agent_protocol, generation_config, load_engine


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="serve a model over an OpenAI-compatible API", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default 8000)")
    parser.add_argument("--api-key", default=os.environ.get("TUNECHAT_API_KEY"),
                        help="require this key as 'Authorization: Bearer KEY' (default: $TUNECHAT_API_KEY, else no key)")
    parser.add_argument("--served-model-name", default=None,
                        help="the model name clients use and /v1/models lists (default: the model's own name)")
    parser.add_argument("--system", default=None, help="system prompt for requests that bring none (default: the model's own)")
    parser.add_argument("--protocol", default=None, choices=PROTOCOLS,
                        help="the tool protocol for OpenAI function calling (`tools` in requests): default the "
                             "fine-tune's, as its tunechat.json records, else internlm2")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="server log verbosity, on stderr (default info: one line per request)")
    add_generation_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from sdk.server import create_app, listen, serve
    except ModuleNotFoundError as exc:
        raise TunechatError(f"serving needs {exc.name}: pip install 'tunechat[serve]'") from None

    if str(args.model or "").startswith(("http://", "https://")):
        raise TunechatError("serve a local model directory: a server URL is already being served")
    config = generation_config(args)
    sock = listen(args.host, args.port)  # a busy port fails now, not after loading the model
    engine = load_engine(args, config, system=args.system)
    app = create_app(engine, api_key=args.api_key, model_name=args.served_model_name, tool_calling=_tool_calling(args))

    def ready(url: str) -> None:
        print(f"Serving {args.served_model_name or engine.name} at {url} (OpenAI-compatible; Ctrl-C stops)", flush=True)

    serve(app, sock, log_level=args.log_level, ready=ready)
    return 0


def _tool_calling(args: argparse.Namespace) -> "ToolCalling | None":
    """OpenAI function calling over the protocol the model was tuned with (None without lagent:
    tool requests are then refused in one line)."""
    import importlib.util

    if importlib.util.find_spec("lagent") is None:
        return None
    from agents.openai_tools import OpenAITools

    return OpenAITools(agent_protocol(args))

"""Model and generation options, shared by the CLI commands that load a model (chat, agent, web,
serve, eval) and by the pages (`web_demo.py`): the flags, and the one mapping from them to
`sdk.load` / `GenerationConfig`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sdk.engines import BaseEngine
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig
from sdk.metadata import read_metadata


def add_model_args(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    """MODEL and how to load it."""
    from sdk.templates import TEMPLATES

    if positional:
        parser.add_argument("model", nargs="?", default=None, metavar="MODEL",
                            help="model directory (a merged model, any HF chat model), a .gguf file (llama.cpp), or a "
                                 "server's http(s)://.../v1 URL; default: the embedded SmolLM2-135M-Instruct")
    parser.add_argument("--backend", default="auto", choices=["auto", "pytorch", "llama.cpp"],
                        help="auto: llama.cpp for a .gguf file, else PyTorch; llama.cpp without MODEL runs the embedded "
                             "model's verified bf16 GGUF (exported once)")
    parser.add_argument("--adapter", default=None, help="a LoRA adapter directory to apply on top of MODEL without merging")
    parser.add_argument("--bits", type=int, choices=[4, 8], default=None,
                        help="load 4-bit (NF4, double quantization) or 8-bit with bitsandbytes; default full precision")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="weights dtype. auto: bf16 on CUDA; on a CPU, bf16 only where it decodes this "
                             "model faster than fp32 (measured once, cached in ~/.cache/tunechat/hardware.json)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    parser.add_argument("--prompt-template", default=None, choices=sorted(TEMPLATES),
                        help="a named XTuner template; default: the model's tunechat.json, else the tokenizer's chat template")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (InternLM-style models)")
    parser.add_argument("--offload-folder", default=None, help="where to offload weights that do not fit in memory")


def add_generation_args(parser: argparse.ArgumentParser) -> None:
    """The GenerationConfig fields as flags; omitted flags keep the defaults."""
    defaults = GenerationConfig()
    parser.add_argument("--max-new-tokens", type=int, default=None, help=f"answer length limit (default {defaults.max_new_tokens})")
    parser.add_argument("--temperature", type=float, default=None, help=f"sampling temperature, 0 = greedy (default {defaults.temperature})")
    parser.add_argument("--top-k", type=int, default=None, help=f"sample among the k likeliest tokens, 0 = off (default {defaults.top_k})")
    parser.add_argument("--top-p", type=float, default=None, help=f"nucleus sampling mass in (0, 1] (default {defaults.top_p})")
    parser.add_argument("--repetition-penalty", type=float, default=None, help="> 1 discourages repeats (default 1.0 = off)")
    parser.add_argument("--seed", type=int, default=None, help="make sampling reproducible")
    parser.add_argument("--stop-words", nargs="+", default=None, metavar="WORD", help="strings that end the answer (cut from it)")


def generation_config(args: argparse.Namespace, **extra: Any) -> GenerationConfig:
    """Flags → a validated GenerationConfig (raises TunechatError naming the bad field)."""
    fields = {name: getattr(args, name, None) for name in
              ("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "seed", "stop_words")}
    return GenerationConfig().replace(**fields, **extra)


def load_engine(args: argparse.Namespace, config: GenerationConfig, system: str | None = None) -> BaseEngine:
    """Load the model the flags describe."""
    import sdk

    return sdk.load(
        args.model,
        adapter=args.adapter,
        bits=args.bits,
        dtype=args.dtype,
        device=args.device,
        template=args.prompt_template,
        system=system,
        generation=config,
        trust_remote_code=args.trust_remote_code,
        offload_folder=args.offload_folder,
        backend=getattr(args, "backend", "auto"),
    )


def add_page_args(parser: argparse.ArgumentParser) -> None:
    """The flags the page itself understands: shared by `tunechat web` and `web_demo.py`."""
    add_model_args(parser)
    parser.add_argument("--system", default=None, help="system prompt (default: the model's own, from its tunechat.json)")
    add_generation_args(parser)


class _PageParser(argparse.ArgumentParser):
    """A bad flag given to the page becomes a TunechatError the page shows, not a SystemExit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise TunechatError(f"web_demo.py arguments: {message}")


def parse_page_args(argv: list[str]) -> argparse.Namespace:
    """The page's settings from the script arguments after `streamlit run web_demo.py --`."""
    parser = _PageParser(prog="web_demo.py", add_help=False)
    add_page_args(parser)
    return parser.parse_args(argv)


def page_argv(args: argparse.Namespace) -> list[str]:
    """The parsed page flags turned back into arguments, so `tunechat web` can hand them to the
    page (only the flags that differ from their defaults)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_page_args(parser)
    argv: list[str] = []
    for action in parser._actions:
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        if not action.option_strings:
            argv.insert(0, str(value))  # the positional MODEL goes first
        elif action.nargs == 0:
            argv.append(action.option_strings[0])  # a store_true switch
        else:
            values = value if isinstance(value, list) else [value]
            argv += [action.option_strings[0], *map(str, values)]
    return argv


def agent_protocol(args: argparse.Namespace) -> str:
    """The tool protocol to serve: --protocol, else the fine-tune's (`trained_agent`), else internlm2."""
    return args.protocol or trained_agent(args).get("protocol") or "internlm2"


def trained_agent(args: argparse.Namespace) -> dict[str, Any]:
    """The tools and protocol a tool fine-tune recorded in the adapter's or model's tunechat.json
    ({} for other models): serving them by default is serving what was trained."""
    for directory in (args.adapter, args.model):
        if directory and Path(directory).is_dir() and (agent := read_metadata(directory).get("agent")):
            return agent
    return {}


def hosted_model(app_dir: Path) -> str | None:
    """The model a hosted page serves when none is given: $TUNECHAT_MODEL (a directory, or a
    server URL), else a `model/` directory beside the app (a merged model uploaded with it),
    else None (the embedded model)."""
    import os

    if os.environ.get("TUNECHAT_MODEL"):
        return os.environ["TUNECHAT_MODEL"]
    beside = app_dir / "model"
    return str(beside) if (beside / "config.json").is_file() else None

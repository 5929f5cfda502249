"""The chat page: `web_demo.py` runs it alone (`tunechat web`, a hosted app), the studio as its
Chat page, over the workspace's models.

A thin front end: loading, prompting and decoding are the sdk's (`sdk.load`, `sdk.Chat`), tool
calling the agents package's (`agents.build_agent`, `agents.action_view`, in agent mode). The page only holds widgets,
each browser session's conversation (`st.session_state`) and one loaded model per distinct loading
setting (`st.cache_resource`), shared by all sessions: the Engine serialises generations itself."""
from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
import threading
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import streamlit as st

import sdk
from sdk.models import EMBEDDED_NAME
from sdk.templates import Message
from tunechat.options import generation_config, hosted_model, load_engine, parse_page_args

PRECISIONS = {"Full": None, "8-bit": 8, "4-bit": 4}


@dataclass
class Turn:
    """One exchange as the page shows it. `stopped` and `error` say why an answer is short; turns
    with an error are not shown to the model again."""

    user: str
    answer: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    error: str = ""


@dataclass
class AgentMode:
    """Agent mode's choices: tool names (as `agents.build_agent` takes them) and the protocol."""

    tools: list[str]
    protocol: str


def one_line(exc: BaseException) -> str:
    """An exception as the one line a user reads (no traceback in the page)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def shared_engine(args: argparse.Namespace) -> sdk.BaseEngine:
    """The Engine for these page flags (`parse_page_args`'s), loaded once and shared by every
    browser session and page."""
    return _cached_engine(tuple(sorted(vars(args).items())))


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _cached_engine(settings: tuple[tuple[str, Any], ...]) -> sdk.BaseEngine:
    """One Engine per distinct loading setting. At most two stay loaded (the current and the
    previous setting), so trying models does not exhaust memory."""
    return load_engine(argparse.Namespace(**dict(settings)), sdk.GenerationConfig())


def page_args(app_dir: Path) -> argparse.Namespace:
    """The starting settings given after `streamlit run web_demo.py --` (or by `tunechat web`);
    hosted without arguments, the model is $TUNECHAT_MODEL or the `model/` directory beside
    the app (`tunechat.options.hosted_model`)."""
    try:
        args = parse_page_args(sys.argv[1:])
    except sdk.TunechatError as exc:
        st.error(str(exc))
        args = parse_page_args([])
    if args.model is None:
        args.model = hosted_model(app_dir)
    return args


def unlocked() -> bool:
    """With $TUNECHAT_WEB_PASSWORD set (a public host), the page asks for it first, once per
    browser session."""
    password = os.environ.get("TUNECHAT_WEB_PASSWORD")
    if not password or st.session_state.get("unlocked"):
        return True
    st.title(":material/lock: tunechat")
    given = st.text_input("Password", type="password", help="This chat is private: ask its owner for the password.")
    if given and hmac.compare_digest(given.encode(), password.encode()):
        st.session_state.unlocked = True
        st.rerun()
    if given:
        st.error("Wrong password.")
    return False


def model_sidebar(args: argparse.Namespace, models: dict[str, tuple[str | None, str | None]] | None = None
                  ) -> tuple[sdk.BaseEngine | None, str, str]:
    """Which model and how to load it: typed paths, or one of `models` (label: model, adapter),
    as the studio offers its workspace's. Returns the engine (None when loading failed, with the
    reason shown), a description of it, and a key naming the model and adapter (their metadata
    pre-fill the conversation settings)."""
    side = st.sidebar
    side.header("Model")
    if models:
        model, adapter = models[side.selectbox("Model", list(models), key="chat_model", help="A model of this workspace: "
                                               "the embedded model, a run's adapter on its base, a merged model or a GGUF export.")]
        model, adapter = model or "", adapter or ""
    else:
        model = side.text_input("Model directory", value=args.model or "", placeholder=f"embedded {EMBEDDED_NAME}",
                                help="A merged fine-tuned model or any HF chat model directory. Empty: the embedded "
                                     f"{EMBEDDED_NAME}.").strip()
        adapter = side.text_input("LoRA adapter (optional)", value=args.adapter or "", placeholder="none",
                                  help="An adapter directory applied on top of the model, without merging.").strip()
    bits = PRECISIONS[side.radio("Loading", list(PRECISIONS), horizontal=True,
                                 index=list(PRECISIONS.values()).index(args.bits),
                                 help="4-bit and 8-bit use bitsandbytes (a GPU, mostly).")]
    settings = argparse.Namespace(**{**vars(args), "model": model or None, "adapter": adapter or None, "bits": bits})
    try:
        engine = shared_engine(settings)
    except Exception as exc:  # a bad path, a missing library, too little memory: all said in one line
        st.error(f"Cannot load the model: {one_line(exc)}")
        return None, "", ""
    precision = {None: "full precision", 8: "8-bit", 4: "4-bit"}[bits]
    on_top = f" with adapter `{adapter}`" if adapter else ""
    where = getattr(engine, "path", None) or getattr(engine, "base_url", "")  # a directory, or a server's URL
    runs_on = f"{precision} on {engine.device}" if hasattr(engine, "device") else "served remotely"
    context = f", {engine.context_length:,}-token context" if engine.context_length else ""
    description = f"Chatting with **{engine.name}**{on_top}: {runs_on}{context}, from `{where}`."
    return engine, description, f"{where}|{adapter}"


def agent_sidebar() -> AgentMode | None:
    """Chat, or a Lagent agent with the chosen tools (None: chat)."""
    side = st.sidebar
    if side.radio("Mode", ["Chat", "Agent"], horizontal=True,
                  help="Agent: the model may call tools (a calculator, an equation solver, Python) before answering.") == "Chat":
        return None
    try:
        import agents
        from agents.tools import TOOL_NAMES
    except ImportError as exc:
        side.error(f"Agent mode needs Lagent: pip install 'tunechat[agents]' ({one_line(exc)})")
        return None
    first_names: dict[Any, str] = {}
    for name, factory in TOOL_NAMES.items():  # a tool has several names (XTuner's too): offer its first
        first_names.setdefault(factory, name)
    tools = side.multiselect("Tools", list(first_names.values()), default=["calculator"])
    protocol = side.selectbox("Protocol", agents.PROTOCOLS, help="How tool calls are written: InternLM2's or ReAct.")
    return AgentMode(tools=tools, protocol=protocol)


def conversation_sidebar(args: argparse.Namespace, engine: sdk.BaseEngine | None, model_key: str) -> tuple[str, dict[str, Any]]:
    """System prompt and generation settings. The model's own system prompt and stop words (its
    tunechat.json) are pre-filled, per model: switching models pre-fills the new model's."""
    side = st.sidebar
    own_system = (engine.system if engine else None) or ""
    own_stops = engine.stop_words if engine else []
    system = side.text_area("System prompt", value=args.system if args.system is not None else own_system,
                            key=f"system@{model_key}",
                            help="Empty: no system prompt. In agent mode, the agent's instructions (empty: its own).")
    stops = side.text_area("Stop words", value="\n".join(args.stop_words or own_stops), key=f"stops@{model_key}", height=68,
                           help="One per line; they end the answer and are cut from it. The model's own stop "
                                "words (pre-filled) always apply.")
    defaults = generation_config(args)
    settings = {
        "temperature": side.slider("Temperature", 0.0, 2.0, min(float(defaults.temperature), 2.0), 0.05,
                                   help="0 is greedy: always the likeliest token."),
        "top_p": side.slider("Top-p", 0.05, 1.0, max(float(defaults.top_p), 0.05), 0.05,
                             help="Sample from the likeliest tokens that make up this much probability."),
        "top_k": int(side.number_input("Top-k", 0, None, defaults.top_k, help="Sample among the k likeliest tokens; 0 is off.")),
        "max_new_tokens": int(side.number_input("Max new tokens", 1, None, defaults.max_new_tokens, 16)),
        "repetition_penalty": float(side.number_input("Repetition penalty", 0.05, None, float(defaults.repetition_penalty),
                                                      0.05, format="%.2f", help="Above 1 discourages repeats.")),
        "seed": side.number_input("Seed (optional)", 0, None, defaults.seed, help="Makes sampling reproducible."),
        "stop_words": [line for line in stops.splitlines() if line.strip()],
    }
    return system, settings


def model_history(turns: list[Turn]) -> list[Message]:
    """The conversation as the model sees it: questions and answers of the turns that did not
    fail (a stopped answer counts as far as it got; tool calls of past turns are not repeated)."""
    return [message for turn in turns if not turn.error
            for message in ({"role": "user", "content": turn.user}, {"role": "assistant", "content": turn.answer})]


def show_action(action: dict[str, Any]) -> None:
    """A tool call and its result (or why it failed), folded away in an expander."""
    failed = bool(action["error"])
    label = f"{action['tool']} failed" if failed else f"Called {action['tool']}"
    with st.expander(label, icon=":material/error:" if failed else ":material/build:"):
        if action["thought"].strip():
            st.markdown(action["thought"])
        st.code(json.dumps(action["args"], ensure_ascii=False, indent=2, default=str), language="json", wrap_lines=True)
        if failed:
            st.error(action["error"])
        else:
            st.code(action["result"], language=None, wrap_lines=True)


def show_turn(turn: Turn) -> None:
    """A past turn, drawn as `answer` drew it live (the page is redrawn from the turns each run)."""
    with st.chat_message("user"):
        st.markdown(turn.user)
    with st.chat_message("assistant"):
        for action in turn.actions:
            show_action(action)
        if turn.answer:
            st.markdown(turn.answer)
        if turn.error:
            st.error(turn.error)
        elif turn.stopped:
            st.caption("Stopped.")


def answer(turn: Turn, turns: list[Turn], reply: Callable[[Turn], None]) -> None:
    """Show the question and `reply` to it (which streams into the page and fills `turn`), with a
    Stop button. Pressing Stop (or sending a new message) makes Streamlit stop this run with an
    exception at its next page update; the answer so far stays as a stopped turn, and the reply's
    stream is closed, which frees the model at once.

    The turn is recorded before the reply because a stopped run may not touch `st` any more
    (even `st.session_state` raises again)."""
    turns.append(turn)
    with st.chat_message("user"):
        st.markdown(turn.user)
    with st.chat_message("assistant"):
        stop = st.empty()
        stop.button("Stop", key="stop", icon=":material/stop_circle:")
        try:
            reply(turn)
        except Exception as exc:  # TunechatError (prompt too long, ...) or a failure in the model
            turn.error = one_line(exc)
            st.error(turn.error)
        except BaseException:  # Streamlit stopping this run: Stop, a new message, a new setting
            turn.stopped = True
            raise
        stop.empty()


def chat_reply(engine: sdk.BaseEngine, system: str, settings: dict[str, Any], history: list[Message], turn: Turn) -> None:
    """Answer with `sdk.Chat`, streamed."""
    chat = sdk.Chat(engine, system=system, **settings)
    chat.history = history
    with closing(chat.stream(turn.user)) as pieces:  # closed at once if the run is stopped
        st.write_stream(kept(turn, pieces))


def kept(turn: Turn, pieces: Iterator[str]) -> Iterator[str]:
    """The pieces, also added to the turn's answer as they come (a stopped answer keeps them)."""
    for piece in pieces:
        turn.answer += piece
        yield piece


def agent_reply(engine: sdk.BaseEngine, mode: AgentMode, system: str, settings: dict[str, Any], history: list[Message],
                turn: Turn) -> None:
    """Answer with a Lagent agent (`agents.build_agent`), streamed: each finished tool call becomes
    an expander, the text being written shows below them, the final answer last."""
    from lagent.schema import AgentStatusCode

    import agents

    agent = agents.build_agent(engine, tools=mode.tools, protocol=mode.protocol, system=system or None, **settings)
    live = st.empty()
    messages = agent.history_from_messages([*history, {"role": "user", "content": turn.user}])
    with closing(agent.stream_chat(messages)) as steps:  # closed at once if the run is stopped
        for step in steps:
            if step.errmsg:
                raise sdk.TunechatError(step.errmsg)
            for action in step.actions[len(turn.actions):]:
                turn.actions.append(agents.action_view(action))
                with live.container():
                    show_action(turn.actions[-1])
                live = st.empty()
            if step.state in (AgentStatusCode.PLUGIN_START, AgentStatusCode.CODING):
                live.code(step.response, language=None, wrap_lines=True)  # a call being written
            elif step.state not in (AgentStatusCode.PLUGIN_RETURN, AgentStatusCode.CODE_RETURN):  # those: the expander
                turn.answer = step.response
                live.markdown(turn.answer)


def main(app_dir: Path) -> None:
    """The page alone, as `web_demo.py` (beside `app_dir`) runs it: behind a password when
    $TUNECHAT_WEB_PASSWORD is set."""
    st.set_page_config(page_title="tunechat", page_icon=":material/forum:", layout="centered")
    if unlocked():
        page(page_args(app_dir))


def page(args: argparse.Namespace, models: dict[str, tuple[str | None, str | None]] | None = None) -> None:
    """The chat, starting from `args` (the page flags); `models` as `model_sidebar` takes them."""
    st.session_state.setdefault("turns", [])
    # Streamlit starts a rerun (Stop, a new message, any widget) at once, in a new thread, while the
    # interrupted run is still recording its turn: runs of one session take turns on this lock.
    with st.session_state.setdefault("run_lock", threading.Lock()):
        _conversation(args, models)


def _conversation(args: argparse.Namespace, models: dict[str, tuple[str | None, str | None]] | None) -> None:
    st.title(":material/forum: tunechat")
    engine, description, model_key = model_sidebar(args, models)
    st.sidebar.header("Conversation")
    if st.sidebar.button("New conversation", width="stretch", icon=":material/refresh:"):
        st.session_state.turns.clear()
    mode = agent_sidebar()
    system, settings = conversation_sidebar(args, engine, model_key)
    st.caption(description or "Chat with your fine-tuned model: choose it in the sidebar.")
    turns: list[Turn] = st.session_state.turns
    for turn in turns:
        show_turn(turn)
    prompt = st.chat_input("Ask the agent" if mode else "Message the model", disabled=engine is None)
    if prompt and engine is not None:
        reply = partial(agent_reply, engine, mode) if mode else partial(chat_reply, engine)
        answer(Turn(user=prompt), turns, partial(reply, system, settings, model_history(turns)))

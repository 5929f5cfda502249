"""The agents: lagent's `Internlm2Agent` and `ReAct`, with one robust loop for both.

Prompts are built by the lagent protocols and the history has exactly lagent's shape (so
training samples rendered from a conversation equal the prompts at inference). The loop itself
is ours because lagent 0.2.4's loops break on malformed replies: invalid JSON silently re-asks
the same prompt (same greedy reply, `max_turn` times, empty answer), a reply without `name` or
`parameters` raises KeyError, `stream_chat` prints debug output and raises on invalid calls.
Here every malformed call becomes an error result the model sees on its next turn, and the
turn always ends with an answer (at worst: `GIVE_UP`).

`chat` returns lagent's `AgentReturn`; `stream_chat` yields `AgentReturn` snapshots as lagent's
streaming agents do: STREAM_ING (text so far), PLUGIN_START / CODING (a call being written),
PLUGIN_RETURN / CODE_RETURN (a call was run: `actions[-1]`), ANSWER_ING (ReAct's final answer
so far), then END with `response`."""
from __future__ import annotations

import dataclasses
import json
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Iterator

from lagent.actions import ActionExecutor
from lagent.agents import Internlm2Agent, ReAct
from lagent.schema import ActionReturn, ActionStatusCode, AgentReturn, AgentStatusCode

from agents.protocols import make_protocol
from sdk.errors import TunechatError

GIVE_UP = "Sorry that I cannot answer your question."  # lagent ReAct's own default response


@dataclass
class Step:
    """One model reply, understood: a final answer, or a call to run (or an error to report)."""

    thought: str
    final: str | None = None
    kind: str = "plugin"  # internlm2: plugin | interpreter
    executor: ActionExecutor | None = None
    tool: str = ""
    parameters: Any = None
    call: Any = None  # the call as the history records it
    error: str | None = None  # why the call cannot run; recorded as its result


class ToolLoop:
    """The turn loop shared by both agents; subclasses say how prompts are built, replies
    parsed and steps recorded."""

    max_turn: int
    _llm: Any

    def chat(self, message: str | dict | list[dict], **gen_params: Any) -> AgentReturn:
        """Answer one user message (or continue a message list); tools run as the model asks."""
        result = None
        for result in self._turns(message, False, gen_params):  # noqa: B007 (the last one is the answer)
            pass
        return result

    def stream_chat(self, message: str | dict | list[dict], **gen_params: Any) -> Iterator[AgentReturn]:
        """As `chat`, yielding progress snapshots; the last one is the END state."""
        yield from self._turns(message, True, gen_params)

    def _turns(self, message: Any, stream: bool, gen_params: dict) -> Iterator[AgentReturn]:
        history = _as_messages(message)
        offset = len(history)
        result = AgentReturn(state=AgentStatusCode.STREAM_ING)
        for turn in range(self.max_turn):
            prompt = self.format_prompt(history, turn)
            if stream:
                response = ""
                for status, response, _ in self._llm.stream_chat(prompt, **gen_params):
                    if status < 0:  # a backend error state (lagent's contract)
                        result.state = AgentStatusCode(int(status))
                        result.errmsg = f"model error: {result.state.name}"
                        yield result
                        return
                    result.state, result.response = self._preview(response)
                    yield _snapshot(result)
            else:
                response = self._llm.chat(prompt, **gen_params)
            step = self.parse_reply(response)
            if step.final is not None:
                self._record_final(history, response, step)
                result.response = step.final
                break
            action_return = self._execute(step)
            result.actions.append(action_return)
            self._record_call(history, response, step, action_return)
            result.state = AgentStatusCode.CODE_RETURN if step.kind == "interpreter" else AgentStatusCode.PLUGIN_RETURN
            result.inner_steps = deepcopy(history[offset:])
            yield _snapshot(result)
        else:
            result.response = GIVE_UP
        result.state = AgentStatusCode.END
        result.inner_steps = deepcopy(history[offset:])
        yield result

    def _execute(self, step: Step) -> ActionReturn:
        if step.error is not None:
            action_return = ActionReturn(args={"call": step.call}, type=step.tool or "invalid call",
                                         errmsg=step.error, state=ActionStatusCode.ARGS_ERROR)
        else:
            try:
                action_return = step.executor(step.tool, step.parameters)
            except Exception as exc:  # lagent's executor itself can raise (e.g. a name with two dots)
                action_return = ActionReturn(args={"call": step.call}, type=step.tool,
                                             errmsg=f"the tool failed: {exc}", state=ActionStatusCode.API_ERROR)
        if action_return.state != ActionStatusCode.SUCCESS and not action_return.errmsg:
            action_return.errmsg = "the tool failed without an error message"
        action_return.thought = step.thought
        return action_return

    # ---- protocol-specific ----------------------------------------------------------------

    def format_prompt(self, history: list[dict], turn: int) -> list[dict]:
        """The role messages of the prompt for model turn `turn` (lagent's protocol.format)."""
        raise NotImplementedError

    def parse_reply(self, response: str) -> Step:
        """A model reply, understood."""
        raise NotImplementedError

    def _preview(self, text: str) -> tuple[AgentStatusCode, str]:
        raise NotImplementedError

    def _record_call(self, history: list[dict], response: str, step: Step, action_return: ActionReturn) -> None:
        raise NotImplementedError

    def _record_final(self, history: list[dict], response: str, step: Step) -> None:
        raise NotImplementedError

    def history_from_messages(self, messages: list[dict]) -> list[dict]:
        """The `messages` form (docs/architecture.md) (user / assistant / assistant with name plugin|interpreter /
        environment) → this agent's history, as its own loop would have recorded it."""
        raise NotImplementedError


class Internlm2ToolAgent(ToolLoop, Internlm2Agent):
    """InternLM2's tool protocol: plugin calls as JSON, interpreter calls as code."""

    def __init__(self, llm: Any, plugin_executor: ActionExecutor | None = None,
                 interpreter_executor: ActionExecutor | None = None, protocol: Any = None, max_turn: int = 3):
        super().__init__(llm=llm, plugin_executor=plugin_executor, interpreter_executor=interpreter_executor,
                         protocol=protocol or make_protocol("internlm2"), max_turn=max_turn)

    def format_prompt(self, history: list[dict], turn: int) -> list[dict]:
        return self._protocol.format(inner_step=history, plugin_executor=self._action_executor,
                                     interpreter_executor=self._interpreter_executor)

    def parse_reply(self, response: str) -> Step:
        kind, language, action = self._protocol.parse(response, self._action_executor, self._interpreter_executor)
        if kind is None:
            return Step(thought=language, final=language)
        if kind == "interpreter":
            step = Step(language, kind=kind, executor=self._interpreter_executor, tool=action["name"],
                        parameters=action["parameters"], call=action)
            if step.executor is None:
                step.error = "no Python interpreter is available: answer directly or use a listed tool"
            return step
        # Recorded as written if it is not valid JSON, less the newline the protocol's call header re-adds.
        step = Step(language, kind=kind, executor=self._action_executor, call=action.removeprefix("\n"))
        if step.executor is None or not step.executor.actions:
            step.error = "no tools are available: answer directly"
            return step
        try:
            call = json.loads(action)
        except json.JSONDecodeError as exc:
            step.error = f'the tool call is not valid JSON ({exc.msg}); write {{"name": TOOL, "parameters": {{...}}}}'
            return step
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            step.error = 'the tool call needs a "name" (and "parameters"): {"name": TOOL, "parameters": {...}}'
            return step
        step.tool, step.parameters, step.call = call["name"], call.get("parameters", {}), call
        step.error = _unknown_tool(step.executor, step.tool)
        return step

    def _preview(self, text: str) -> tuple[AgentStatusCode, str]:
        kind, language, action = self._protocol.parse(text, self._action_executor, self._interpreter_executor)
        if kind == "plugin":
            return AgentStatusCode.PLUGIN_START, action
        if kind == "interpreter":
            return AgentStatusCode.CODING, action["parameters"]["command"]
        tool = self._protocol.tool
        markers = [tool["start_token"] + name for name in tool["name_map"].values()]
        return AgentStatusCode.STREAM_ING, _hold_back(language, markers)

    def _record_call(self, history: list[dict], response: str, step: Step, action_return: ActionReturn) -> None:
        history.append(dict(role="language", content=step.thought))
        history.append(dict(role="tool", content=step.call, name=step.kind))
        history.append(self._protocol.format_response(action_return, name=step.kind))

    def _record_final(self, history: list[dict], response: str, step: Step) -> None:
        history.append(dict(role="language", content=step.thought))

    def history_from_messages(self, messages: list[dict]) -> list[dict]:
        history = []
        for message in messages:
            role, name, content = message["role"], message.get("name"), message["content"]
            if role == "user":
                history.append(dict(role="user", content=content))
            elif role == "assistant" and name is None:
                history.append(dict(role="language", content=content))
            elif role == "assistant" and name == "plugin":
                history.append(dict(role="tool", content=json_or_text(content), name="plugin"))
            elif role == "assistant" and name == "interpreter":
                history.append(dict(role="tool", content=content.strip(), name="interpreter"))
            elif role == "environment":
                history.append(self._protocol.format_response(_result(content), name=name or "plugin"))
            else:
                raise TunechatError(f"a {role!r} message named {name!r} has no place in an internlm2 conversation")
        return history


class ReActToolAgent(ToolLoop, ReAct):
    """The ReAct protocol: Thought / Action / Action Input, then Final Answer."""

    def __init__(self, llm: Any, action_executor: ActionExecutor, protocol: Any = None, max_turn: int = 4):
        super().__init__(llm=llm, action_executor=action_executor, protocol=protocol or make_protocol("react"),
                         max_turn=max_turn)

    def format_prompt(self, history: list[dict], turn: int) -> list[dict]:
        return self._protocol.format(chat_history=[], inner_step=history, action_executor=self._action_executor,
                                     force_stop=turn == self.max_turn - 1)

    def parse_reply(self, response: str) -> Step:
        executor = self._action_executor
        thought, action, action_input = self._protocol.parse(response, executor)
        if action == executor.finish_action.name:
            return Step(thought, final=action_input.strip())
        if action == executor.no_action.name:
            if self._protocol.action["begin"] not in response:
                # No call and no "Final Answer:": take the reply as the answer rather than
                # asking again (lagent would re-prompt "Please follow the format" max_turn times).
                return Step(thought, final=thought.strip() or response.strip())
            return Step(thought, executor=executor, call=response,
                        error="write a tool call as: Action: TOOL NAME, then on the next line Action Input: {JSON arguments}")
        return Step(thought, executor=executor, tool=action, parameters=action_input, call=response,
                    error=_unknown_tool(executor, action))

    def _preview(self, text: str) -> tuple[AgentStatusCode, str]:
        protocol = self._protocol
        finish, action = protocol.finish["begin"], protocol.action["begin"]
        if finish in text:
            return AgentStatusCode.ANSWER_ING, text.split(finish)[-1].lstrip()
        if action in text:
            return AgentStatusCode.PLUGIN_START, text[text.index(action):]
        thought = text.split(protocol.thought["begin"])[-1].lstrip()
        return AgentStatusCode.STREAM_ING, _hold_back(thought, [finish, action])

    def _record_call(self, history: list[dict], response: str, step: Step, action_return: ActionReturn) -> None:
        history.append(dict(role="assistant", content=response))
        history.append(self._protocol.format_response(action_return))

    def _record_final(self, history: list[dict], response: str, step: Step) -> None:
        history.append(dict(role="assistant", content=response))

    def history_from_messages(self, messages: list[dict]) -> list[dict]:
        history, thought = [], None
        for index, message in enumerate(messages):
            role, name, content = message["role"], message.get("name"), message["content"]
            following = messages[index + 1] if index + 1 < len(messages) else {}
            if role == "user":
                history.append(dict(role="user", content=content))
            elif role == "assistant" and name is None and following.get("role") == "assistant" and following.get("name"):
                thought = content  # the thought before a call: one ReAct reply with it
            elif role == "assistant" and name is None:
                history.append(dict(role="assistant", content=self.final_text(content)))
            elif role == "assistant" and name in ("plugin", "interpreter"):
                tool, parameters = self._call_of(name, content)
                history.append(dict(role="assistant", content=self.call_text(tool, parameters, thought)))
                thought = None
            elif role == "environment":
                history.append(self._protocol.format_response(_result(content)))
            else:
                raise TunechatError(f"a {role!r} message named {name!r} has no place in a react conversation")
        return history

    def call_text(self, tool: str, parameters: Any, thought: str | None = None) -> str:
        """The ReAct reply that calls `tool` (the canonical form training data uses)."""
        p = self._protocol
        lines = [f"{p.thought['begin']} {thought}"] if thought else []
        arguments = parameters if isinstance(parameters, str) else json.dumps(parameters, ensure_ascii=False)
        lines += [f"{p.action['begin']} {tool}", f"{p.action_input['begin']} {arguments}"]
        return "\n".join(lines)

    def final_text(self, answer: str) -> str:
        """The ReAct reply that gives the final answer."""
        return f"{self._protocol.finish['begin']} {answer}"

    def _call_of(self, name: str, content: Any) -> tuple[str, Any]:
        if name == "interpreter":  # ReAct has no interpreter role: the sandbox is a tool like the others
            return "PythonSandbox", {"command": content.strip()}
        call = json_or_text(content)
        if not isinstance(call, dict) or "name" not in call:
            raise TunechatError(f"a plugin call must be JSON with a name and parameters, got {content!r}")
        return call["name"], call.get("parameters", {})


def _as_messages(message: Any) -> list[dict]:
    if isinstance(message, str):
        return [dict(role="user", content=message)]
    if isinstance(message, dict):
        return [message]
    if isinstance(message, list):
        return list(message)
    raise TunechatError(f"a message must be text, a dict or a list of dicts, got {type(message).__name__}")


def _snapshot(result: AgentReturn) -> AgentReturn:
    return dataclasses.replace(result, actions=list(result.actions))


def _unknown_tool(executor: ActionExecutor, name: str) -> str | None:
    if name.split(".")[0] in executor.actions:
        return None
    available = ", ".join(executor.action_names()) or "none"
    return f"there is no tool named {name!r}; the tools are: {available}"


def _hold_back(text: str, markers: list[str]) -> str:
    """Text without a tail that may be the start of a marker still being generated."""
    for size in range(min(len(text), max(map(len, markers)) - 1), 0, -1):
        if any(marker.startswith(text[-size:]) for marker in markers):
            return text[:-size]
    return text


def json_or_text(content: Any) -> Any:
    """A call's content as the history holds it: parsed JSON when it is JSON, else the text."""
    if isinstance(content, str):
        try:
            return json.loads(content)
        except json.JSONDecodeError:
            return content
    return content


def _result(text: str) -> ActionReturn:
    """A successful tool result carrying `text` (for lagent's format_response)."""
    return ActionReturn(result=[{"type": "text", "content": text}], state=ActionStatusCode.SUCCESS)

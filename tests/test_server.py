"""`tunechat serve` as a real subprocess on a free localhost port, driven by the official `openai`
client, raw HTTP and tunechat's own remote backend; every answer is compared with the in-process
Engine's.

The expectations are computed in process *before* the server starts, and the test process then
only waits on HTTP while the server generates: two busy torch processes on 2 cores slow each
other ~10x."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import threading
import time

import httpx
import openai
import pytest
from agent_scripts import ScriptedEngine
from conftest import run_cli

import sdk
from sdk.engines import Generation
from sdk.server import ServerProcess, Worker

KEY = "test-key"
MAX = 24  # short answers keep the 16-client test well under a minute
GREEDY = {"temperature": 0, "max_new_tokens": MAX}
SAMPLED = {"temperature": 1.3, "top_p": 0.95, "seed": 1234, "max_new_tokens": MAX}
RAW = "The three primary colors are"
QUESTIONS = [
    "What is 2+2?", "Name a fruit.", "What color is the sky?", "Say hello in French.",
    "What is the capital of Italy?", "How many legs does a spider have?", "What is water made of?",
    "Give me a synonym for happy.", "What is the opposite of cold?", "Name a planet.",
    "What do bees make?", "How many days are in a week?", "What is the largest ocean?",
    "Who wrote Hamlet?", "What is 10 divided by 2?", "Name a musical instrument.",
]
TURNS = ["Hi, my name is Bob.", "What is my name?"]
CALL = '<|action_start|><|plugin|>\n{"name": "Calculator", "parameters": {"expression": "37 * 91"}}'
ECHO_CALL = f"Echo this text back to me exactly as written:\n\n{CALL}<|action_end|>"


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def expected(engine) -> dict:
    """Every in-process answer the tests compare with (Generations, exhausted)."""

    def run(generation: Generation) -> Generation:
        generation.result()
        return generation

    answers = {q: run(engine.stream(user(q), **GREEDY)) for q in QUESTIONS}
    first = answers[QUESTIONS[0]].text
    stop = first.split()[3]  # a word inside the greedy answer: the stopped answer must be shorter
    chat = sdk.Chat(engine, **GREEDY)
    out = {
        "answers": answers,
        "stop": stop,
        "stopped": run(engine.stream(user(QUESTIONS[0]), stop_words=["@@none@@", stop], **GREEDY)),
        "sampled": run(engine.stream(user(QUESTIONS[1]), **SAMPLED)),
        "raw": run(engine.generate(RAW, **GREEDY)),
        "turns": [chat.send(turn) for turn in TURNS],
    }
    assert len(out["stopped"].text) < len(first) and stop not in out["stopped"].text
    assert out["sampled"].text != answers[QUESTIONS[1]].text, "pick SAMPLED settings whose answer differs from greedy"
    return out


def run_agent(engine, message: str) -> dict:
    """One agent turn with the calculator, greedy; what it did, as plain data."""
    from agents import build_agent

    result = build_agent(engine, tools=["calculator"], temperature=0, max_new_tokens=48, max_turn=2).chat(message)
    return {"steps": result.inner_steps, "response": result.response,
            "actions": [(a.type, a.args, a.result, a.state) for a in result.actions]}


@pytest.fixture(scope="module")
def agent_runs(engine) -> dict | None:
    """The agent's runs in process (computed before the server starts, like `expected`);
    None without lagent, whose tests then skip (the server's tests still run)."""
    if importlib.util.find_spec("lagent") is None:
        return None
    runs = {"echo": run_agent(engine, ECHO_CALL), "scripted": run_agent(ScriptedEngine([CALL], engine), "What is 37 * 91?")}
    assert runs["echo"]["actions"], "the model should start a tool call when asked to echo one"
    return runs


@pytest.fixture(scope="module")
def server(expected, agent_runs, model_path):
    with ServerProcess(str(model_path), "--api-key", KEY) as process:
        yield process


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    # Generous: 16 clients queue behind one serialised worker, and a loaded 2-core CI box is slow.
    return openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0, timeout=600)


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url + "/", headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
        yield c


def test_health_and_models(server, client, engine):
    assert httpx.get(server.url.removesuffix("/v1") + "/health").json()["status"] == "ok"  # no key needed
    models = client.models.list().data
    assert [m.id for m in models] == [engine.name]


def test_chat_completion_equals_engine_chat(client, engine, expected):
    want = expected["answers"][QUESTIONS[0]]
    reply = client.chat.completions.create(model=engine.name, messages=user(QUESTIONS[0]), temperature=0, max_tokens=MAX)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == want.text == engine.chat(user(QUESTIONS[0]), **GREEDY)
    assert choice.finish_reason == want.finish_reason
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (want.prompt_tokens, want.completion_tokens)
    assert reply.usage.total_tokens == want.prompt_tokens + want.completion_tokens


def test_streamed_chat_completion(client, engine, expected):
    want = expected["answers"][QUESTIONS[2]]
    chunks = list(client.chat.completions.create(model=engine.name, messages=user(QUESTIONS[2]), temperature=0,
                                                 max_tokens=MAX, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1  # really streamed, piece by piece
    assert "".join(pieces) == want.text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [want.finish_reason]
    assert chunks[-1].usage.completion_tokens == want.completion_tokens


def test_completion_continues_the_raw_prompt(client, engine, expected):
    want = expected["raw"]
    reply = client.completions.create(model=engine.name, prompt=RAW, temperature=0, max_tokens=MAX)
    assert reply.choices[0].text == want.text
    assert reply.usage.prompt_tokens == want.prompt_tokens == len(engine.encode(RAW))  # no template added
    streamed = client.completions.create(model=engine.name, prompt=RAW, temperature=0, max_tokens=MAX, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == want.text


def test_stop_words_sampling_seed_and_length(client, engine, expected):
    stopped = client.chat.completions.create(model=engine.name, messages=user(QUESTIONS[0]), temperature=0,
                                             max_tokens=MAX, stop=["@@none@@", expected["stop"]])
    assert stopped.choices[0].message.content == expected["stopped"].text
    assert stopped.choices[0].finish_reason == "stop"
    one_stop = client.chat.completions.create(model=engine.name, messages=user(QUESTIONS[0]), temperature=0,
                                              max_tokens=MAX, stop=expected["stop"])  # a string, not a list
    assert one_stop.choices[0].message.content == expected["stopped"].text
    sampled = client.chat.completions.create(model=engine.name, messages=user(QUESTIONS[1]), temperature=SAMPLED["temperature"],
                                             top_p=SAMPLED["top_p"], seed=SAMPLED["seed"], max_tokens=MAX)
    assert sampled.choices[0].message.content == expected["sampled"].text
    short = client.chat.completions.create(model=engine.name, messages=user(QUESTIONS[3]), temperature=0, max_tokens=3)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3


def test_16_concurrent_clients_each_get_their_solo_answer(client, engine, expected):
    start = threading.Barrier(len(QUESTIONS))
    results: dict[str, str] = {}
    failures: list[BaseException] = []

    def ask(question: str) -> None:
        try:
            start.wait()
            reply = client.chat.completions.create(model=engine.name, messages=user(question), temperature=0, max_tokens=MAX)
            results[question] = reply.choices[0].message.content
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures
    assert results == {q: g.text for q, g in expected["answers"].items()}
    assert len(set(results.values())) > 8  # different prompts really got different answers


BAD = {
    "broken JSON": ("chat/completions", b'{"messages": [{"role": "user", "content": "hi"}', 400, None),
    "missing messages": ("chat/completions", {"max_tokens": 5}, 400, "messages"),
    "max_tokens -1": ("chat/completions", {"messages": user("hi"), "max_tokens": -1}, 400, "max_tokens"),
    "max_tokens -1, streamed": ("completions", {"prompt": "hi", "max_tokens": -1, "stream": True}, 400, "max_tokens"),
    "unknown model": ("chat/completions", {"model": "gpt-9", "messages": user("hi")}, 404, "model"),
    "n=2": ("chat/completions", {"messages": user("hi"), "n": 2}, 400, "n"),
    "temperature 3": ("chat/completions", {"messages": user("hi"), "temperature": 3}, 400, "temperature"),
    "top_p 0": ("completions", {"prompt": "hi", "top_p": 0}, 400, "top_p"),
    "seed 2**70": ("completions", {"prompt": "hi", "seed": 2**70}, 400, "seed"),
    "a tool result without its call": ("chat/completions", {"messages": [{"role": "tool", "content": "x"}]}, 400,
                                       "messages[0].tool_call_id"),
    "a function call (legacy)": ("chat/completions", {"messages": user("hi"), "functions": [{"name": "f"}]}, 400,
                                 "functions"),
    "a message without content": ("chat/completions", {"messages": [{"role": "user"}]}, 400, "messages.0"),
    "two users in a row": ("chat/completions", {"messages": user("a") + user("b")}, 400, None),
    "logprobs": ("chat/completions", {"messages": user("hi"), "logprobs": True}, 400, "logprobs"),
    "over-long prompt": ("chat/completions", {"messages": user("word " * 9000)}, 400, "messages"),
    "over-long raw prompt": ("completions", {"prompt": "word " * 9000}, 400, "prompt"),
    "too many max_tokens": ("completions", {"prompt": "hi", "max_tokens": 100_000}, 400, "max_tokens"),
    "empty prompt": ("completions", {"prompt": ""}, 400, None),
    "no such endpoint": ("embeddings", {"input": "hi"}, 404, None),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(http, case):
    path, body, status, param = BAD[case]
    response = http.post(path, content=body) if isinstance(body, bytes) else http.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["param"] == param
    if case.startswith("over-long"):
        assert error["code"] == "context_length_exceeded"
    assert http.post("completions", json={"prompt": "Hello", "max_tokens": 2}).status_code == 200


def test_api_key_is_required(server, engine):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.post(server.url + "/chat/completions", json={"messages": user("hi")}, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(server.url + "/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0).models.list()


def test_openai_client_sees_openai_errors(client, engine):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-9", messages=user("hi"))
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=engine.name, messages=user("hi"), max_tokens=-1)


def test_the_loop_stays_responsive_and_a_disconnect_frees_the_model(server, http):
    body = {"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0, "stream": True}  # ~10-30 s of work
    with http.stream("POST", "completions", json=body) as stream:
        next(line for line in stream.iter_lines() if line.startswith("data:"))  # generating now
        began = time.perf_counter()
        assert httpx.get(server.url.removesuffix("/v1") + "/health").status_code == 200
        assert time.perf_counter() - began < 2
    began = time.perf_counter()  # the stream is closed: its generation must stop at the next token
    assert http.post("completions", json={"prompt": "Hi", "max_tokens": 1}).status_code == 200
    assert time.perf_counter() - began < 5


def test_worker_never_runs_or_stops_abandoned_generations():
    """A stream whose consumer went away stops at the next piece; one abandoned while still
    waiting its turn never starts."""
    events: dict[str, list[str]] = {"slow": [], "queued": []}
    closed = threading.Event()

    def endless(name: str):
        def start(out: Generation):
            try:
                while True:
                    events[name].append("x")
                    yield "x"
                    time.sleep(0.05)
            finally:
                closed.set()
        return start

    async def scenario() -> None:
        worker = Worker()
        slow = worker.pieces(Generation(endless("slow")))
        queued = worker.pieces(Generation(endless("queued")))
        assert await slow.__anext__() == "x"
        waiting = asyncio.ensure_future(queued.__anext__())  # submits it behind the slow one
        await asyncio.sleep(0.1)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await queued.aclose()
        await slow.aclose()

    asyncio.run(scenario())
    assert closed.wait(5)
    produced = len(events["slow"])
    time.sleep(0.3)
    assert len(events["slow"]) == produced <= 5
    assert events["queued"] == []


def test_remote_engine_and_chat(server, engine, expected):
    remote = sdk.load(server.url, api_key=KEY)
    assert isinstance(remote, sdk.RemoteEngine) and remote.name == engine.name
    assert remote.context_length == engine.context_length
    generation = remote.stream(user(QUESTIONS[0]), **GREEDY)
    pieces = list(generation)
    want = expected["answers"][QUESTIONS[0]]
    assert len(pieces) > 1 and "".join(pieces) == generation.text == want.text
    assert (generation.finish_reason, generation.prompt_tokens, generation.completion_tokens) == (
        want.finish_reason, want.prompt_tokens, want.completion_tokens)
    assert remote.chat(user(QUESTIONS[0]), stop_words=[expected["stop"]], **GREEDY) == expected["stopped"].text
    assert remote.chat(user(QUESTIONS[1]), **SAMPLED) == expected["sampled"].text
    assert remote.generate(RAW, **GREEDY).result() == expected["raw"].text

    chat = sdk.Chat(remote, **GREEDY)  # sdk.Chat works over the remote backend unchanged
    assert [chat.send(TURNS[0]), "".join(chat.stream(TURNS[1]))] == expected["turns"]
    assert [m["role"] for m in chat.history] == ["user", "assistant"] * 2


def test_remote_engine_errors(server):
    with pytest.raises(sdk.TunechatError, match="401"):
        sdk.load(server.url, api_key="wrong")
    with pytest.raises(sdk.TunechatError, match="does not serve"):
        sdk.load(server.url, model="gpt-9", api_key=KEY)
    with pytest.raises(sdk.TunechatError, match="only for local models"):
        sdk.load(server.url, bits=4, api_key=KEY)
    remote = sdk.load(server.url, api_key=KEY)
    with pytest.raises(sdk.TunechatError, match="context"):
        remote.chat(user("hi"), max_new_tokens=100_000)


def test_serve_fails_in_one_line_on_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_cli("serve", "--port", str(busy.getsockname()[1]), timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("tunechat serve: error: cannot listen on") and result.stderr.count("\n") == 1


def test_tunechat_chat_talks_to_the_server(server, expected):
    result = run_cli("chat", server.url, "--temperature", "0", "--max-new-tokens", str(MAX),
                     stdin="\n".join(TURNS) + "\n", env={"TUNECHAT_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(answer + "\n" for answer in expected["turns"])


def needs_lagent(agent_runs) -> None:
    if agent_runs is None:
        pytest.skip("lagent is not installed (pip install 'tunechat[agents]')")


def test_agent_runs_over_the_remote_backend_as_in_process(server, agent_runs):
    """The real model, asked to echo a call, starts one (`<|action_start|><|plugin|>`, then
    prose): the agent records it, sends the error result back and asks again, all through the
    server. Every step equals the in-process run, so the agent's raw prompts, stop words and
    special markers travel byte-exact through /v1/completions."""
    needs_lagent(agent_runs)
    remote = sdk.load(server.url, api_key=KEY)
    run = run_agent(remote, ECHO_CALL)
    assert run == agent_runs["echo"]
    assert any(step["role"] == "environment" for step in run["steps"])  # a tool turn went round


def test_agent_tool_turn_through_the_server(server, agent_runs):
    """The first reply is a scripted calculator call (the base model cannot start one on its
    own); it really runs, and the model's own next reply, generated by the server with the
    result in its prompt, is a valid calculator call of its own, which runs too. Every step
    equals the in-process run."""
    needs_lagent(agent_runs)
    remote = sdk.load(server.url, api_key=KEY)
    run = run_agent(ScriptedEngine([CALL], remote), "What is 37 * 91?")
    assert run == agent_runs["scripted"]
    assert len(run["actions"]) == 2  # the scripted call, then the model's own
    for kind, args, result, state in run["actions"]:
        assert (kind, args, state.name) == ("Calculator", {"expression": "37 * 91"}, "SUCCESS")
        assert "3367" in str(result)


# ---- every command that takes a MODEL, with the server's URL -----------------------------------

def test_eval_identity_over_the_server_asks_the_served_model(server, engine, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"conversation": [{"input": q, "output": "-"}]}) + "\n"
                                 for q in ("Who are you?", "你是谁？")), encoding="utf-8")
    control = tmp_path / "control.jsonl"
    control.write_text(json.dumps({"question": "What is the capital of France?", "keywords": ["Paris"]}) + "\n")
    result = run_cli("eval", "identity", server.url, "--name", "Alice", "--questions", str(questions), "--unrelated",
                     str(questions), "--control", str(control), "--json", env={"TUNECHAT_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["model"]
    served = [row["answer"] for row in report["identity"]]
    assert served == [engine.chat(user(q), temperature=0, max_new_tokens=40) for q in ("Who are you?", "你是谁？")]
    assert [row["question"] for row in report["control"]] == ["What is the capital of France?"]
    assert [row["answer"] for row in report["unrelated"]] == served  # --unrelated: the same two questions
    assert report["retention"] is not None and 0 <= report["retention"] <= 1


def test_eval_tools_over_the_server_runs_the_agent_on_the_served_model(server, tmp_path, agent_runs):
    needs_lagent(agent_runs)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"question": "What is 37 * 91?", "answer": 3367}) + "\n")
    result = run_cli("eval", "tools", server.url, "--tasks", str(tasks), "--json", env={"TUNECHAT_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)
    # The base (in process) and the served model are the same weights: the same transcript.
    assert reports["model"]["results"][0]["response"] == reports["base"]["results"][0]["response"]


def test_data_identity_regularizes_with_the_served_model(server, tmp_path):
    out = tmp_path / "identity.jsonl"
    result = run_cli("data", "identity", "--name", "Alice", "--size", "4", "--regularize-with", server.url,
                     "--regularize-count", "2", "--regularize-max-tokens", "24", "-o", str(out),
                     env={"TUNECHAT_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 6
    remote = sdk.load(server.url, api_key=KEY)
    regularization = [r["conversation"][0] for r in records if "Alice" not in r["conversation"][0]["output"]]
    assert len(regularization) == 2
    for turn in regularization:
        answer = remote.stream(user(turn["input"]), temperature=0, max_new_tokens=24)
        answer.result()
        assert turn["output"] in answer.text and (answer.finish_reason == "length" or turn["output"] == answer.text)


def test_tunechat_agent_talks_to_the_server(server, engine, agent_runs):
    needs_lagent(agent_runs)
    from agents import AgentChat, build_agent

    result = run_cli("agent", server.url, "--tools", "calculator", "--temperature", "0", "--max-new-tokens", "24",
                     stdin="Hello!\n", env={"TUNECHAT_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    local = AgentChat(build_agent(engine, tools=["calculator"], temperature=0, max_new_tokens=24), engine)
    assert result.stdout == local.send("Hello!") + "\n"


def test_the_web_page_chats_with_the_server(server, engine, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    monkeypatch.setenv("TUNECHAT_API_KEY", KEY)
    monkeypatch.setattr("sys.argv", ["web_demo.py", server.url, "--temperature", "0", "--max-new-tokens", str(MAX)])
    app = AppTest.from_file(str(ROOT / "web_demo.py"), default_timeout=300)
    app.run()
    assert not app.exception and "served remotely" in app.caption[0].value
    app.chat_input[0].set_value(QUESTIONS[0]).run()
    assert not app.exception
    answers = ["\n".join(md.value for md in m.markdown) for m in app.chat_message if m.name == "assistant"]
    assert answers == [engine.chat(user(QUESTIONS[0]), **GREEDY)]


@pytest.mark.parametrize("command", [["train", "--model", "URL", "--data", "x.jsonl"], ["merge", "URL", "adapter", "out"]])
def test_train_and_merge_say_they_need_a_local_model(server, command):
    result = run_cli(*[server.url if part == "URL" else part for part in command])
    assert result.returncode == 1 and "needs the weights: give a local model directory" in result.stderr
    assert result.stderr.count("\n") == 1

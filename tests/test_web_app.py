"""The web page (`web_demo.py`) driven through Streamlit's AppTest, on the real embedded model.

The page's answers are compared with what the sdk answers for the same conversation (greedy,
short answers), so the page is shown to pass the sidebar's settings and its history through."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGE = ROOT / "web_demo.py"
QUESTION = "What is the capital of France?"
SETTINGS = {"temperature": 0, "max_new_tokens": 24}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The page started as `streamlit run web_demo.py -- --temperature 0 --max-new-tokens 24`."""
    monkeypatch.setattr(sys, "argv", ["web_demo.py", "--temperature", "0", "--max-new-tokens", "24"])
    app = AppTest.from_file(str(PAGE), default_timeout=300)
    app.run()
    assert not app.exception
    return app


def widget(widgets, label: str):
    """The widget with this label (labels are what a user sees; some keys are per model)."""
    return next(w for w in widgets if w.label == label)


def send(app: AppTest, text: str) -> None:
    app.chat_input[0].set_value(text).run()
    assert not app.exception


def conversation(app: AppTest) -> list[tuple[str, str]]:
    """What the page shows: (role, text) per chat message."""
    return [(m.name, "\n".join(md.value for md in m.markdown)) for m in app.chat_message]


def test_answers_from_the_real_model_and_keeps_history(app: AppTest, engine) -> None:
    assert "SmolLM2-135M-Instruct" in app.caption[0].value  # the loaded model is described
    send(app, QUESTION)
    first = engine.chat([{"role": "user", "content": QUESTION}], **SETTINGS)
    assert "Paris" in first
    assert conversation(app) == [("user", QUESTION), ("assistant", first)]

    send(app, "And of Italy?")
    second = engine.chat([{"role": "user", "content": QUESTION}, {"role": "assistant", "content": first},
                          {"role": "user", "content": "And of Italy?"}], **SETTINGS)
    assert conversation(app)[2:] == [("user", "And of Italy?"), ("assistant", second)]


def test_system_prompt_and_stop_words_from_the_sidebar(app: AppTest, engine) -> None:
    system = widget(app.sidebar.text_area, "System prompt")
    assert system.value == (engine.system or "")  # pre-filled with the model's own
    system.set_value("Answer in French.").run()
    send(app, QUESTION)
    french = engine.chat([{"role": "system", "content": "Answer in French."}, {"role": "user", "content": QUESTION}], **SETTINGS)
    assert french != engine.chat([{"role": "user", "content": QUESTION}], **SETTINGS)
    assert conversation(app)[1] == ("assistant", french)

    widget(app.sidebar.text_area, "System prompt").set_value("").run()
    widget(app.sidebar.text_area, "Stop words").set_value("Paris").run()
    app.sidebar.button[0].click().run()  # New conversation
    send(app, QUESTION)
    answer = conversation(app)[1][1]
    assert answer == "The capital of France is" and "Paris" not in answer


def test_new_conversation_forgets_the_history(app: AppTest) -> None:
    send(app, QUESTION)
    first = conversation(app)
    send(app, "Say that again.")
    assert len(conversation(app)) == 4
    new = widget(app.sidebar.button, "New conversation")
    new.click().run()
    assert conversation(app) == []
    send(app, QUESTION)
    assert conversation(app) == first  # answered as a first turn again


@pytest.fixture
def model_replies(monkeypatch: pytest.MonkeyPatch):
    """Scripts the model's raw-prompt replies (the agent's turns), since a 135M model does not
    call tools on its own; returns the prompts it was given. The page, the agent loop and the
    tools all run for real."""
    from sdk.engines import Engine, Generation

    prompts: list[str] = []

    def script(*replies: str) -> list[str]:
        def generate(self, prompt: str, config=None, **overrides):
            prompts.append(prompt)
            reply = replies[len(prompts) - 1]

            def pieces(out: Generation):
                for piece in reply.split(" "):  # streamed in pieces, as the model would
                    out.text += piece + " "
                    yield piece + " "

            return Generation(pieces)

        monkeypatch.setattr(Engine, "generate", generate)
        return prompts

    return script


def call(expression: str) -> str:
    """A calculator call as InternLM2's protocol writes it (the stop word <|action_end|> cut)."""
    return '<|action_start|><|plugin|>\n{"name": "Calculator", "parameters": {"expression": "%s"}}' % expression


def assistant_parts(app: AppTest) -> list[str]:
    """The kinds of element in the last answer, in page order (containers included)."""
    def walk(node) -> list[str]:
        return [type(node).__name__] + [kind for child in getattr(node, "children", {}).values() for kind in walk(child)]

    return walk(app.chat_message[-1])[1:]


def test_agent_mode_shows_the_tool_call_and_its_result_then_the_answer(app: AppTest, model_replies) -> None:
    prompts = model_replies(call("37 * 91"), "37 times 91 is 3367.")
    widget(app.sidebar.radio, "Mode").set_value("Agent").run()
    assert widget(app.sidebar.multiselect, "Tools").value == ["calculator"]
    send(app, "What is 37 * 91?")
    assert "Calculator" in prompts[0] and "3367" in prompts[1]  # the tool's result went back to the model
    [expander] = app.expander
    assert expander.label == "Called Calculator"
    assert '"expression": "37 * 91"' in expander.code[0].value and expander.code[1].value == "3367"
    assert conversation(app)[1] == ("assistant", "37 times 91 is 3367.")
    parts = assistant_parts(app)
    assert parts.index("Expander") < parts.index("Markdown") and parts.count("Markdown") == 1  # the answer below
    assert not app.error


def test_a_tool_failure_is_an_error_in_the_page_and_the_page_goes_on(app: AppTest, model_replies) -> None:
    prompts = model_replies(call("1 / 0"), "One cannot divide by zero.")
    widget(app.sidebar.radio, "Mode").set_value("Agent").run()
    send(app, "What is 1 / 0?")
    [expander] = app.expander
    assert expander.label == "Calculator failed"
    assert len(app.error) == 1 and "zero" in app.error[0].value
    assert "zero" in prompts[1]  # the model was told why
    assert conversation(app)[1] == ("assistant", "One cannot divide by zero.")

    widget(app.sidebar.radio, "Mode").set_value("Chat").run()  # the page goes on
    assert app.chat_input[0].placeholder == "Message the model" and not app.exception


def test_a_bad_model_path_is_an_error_in_the_page_and_the_page_recovers(app: AppTest, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    widget(app.sidebar.text_input, "Model directory").set_value(str(missing)).run()
    assert not app.exception
    assert len(app.error) == 1 and "no such directory" in app.error[0].value
    assert app.chat_input[0].disabled

    widget(app.sidebar.text_input, "Model directory").set_value("").run()  # back to the embedded model
    assert not app.error and not app.chat_input[0].disabled
    send(app, QUESTION)
    assert "Paris" in conversation(app)[1][1]


def test_tunechat_web_rejects_a_bad_model_in_one_line(tmp_path: Path) -> None:
    result = run_cli("web", str(tmp_path / "missing"), "--port", "1")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such directory" in result.stderr


def test_tunechat_web_hands_its_flags_to_the_page() -> None:
    from tunechat.cli import build_parser
    from tunechat.options import page_argv, parse_page_args

    args = build_parser().parse_args(["web", "merged", "--bits", "4", "--port", "9000", "--temperature", "0",
                                      "--stop-words", "<|end|>", "###", "--trust-remote-code"])
    argv = page_argv(args)
    assert argv[0] == "merged" and "--port" not in argv
    page = parse_page_args(argv)
    assert (page.model, page.bits, page.temperature, page.stop_words, page.trust_remote_code) == \
        ("merged", 4, 0.0, ["<|end|>", "###"], True)


def test_a_hosted_page_takes_its_model_from_the_environment(monkeypatch: pytest.MonkeyPatch, model_path) -> None:
    monkeypatch.setattr(sys, "argv", ["web_demo.py"])
    monkeypatch.setenv("TUNECHAT_MODEL", str(model_path))
    app = AppTest.from_file(str(PAGE), default_timeout=300)
    app.run()
    assert not app.exception and str(model_path) in app.caption[0].value


def test_a_hosted_page_serves_the_model_beside_it(monkeypatch: pytest.MonkeyPatch, model_path, tmp_path) -> None:
    monkeypatch.setattr(sys, "argv", ["web_demo.py"])
    monkeypatch.delenv("TUNECHAT_MODEL", raising=False)
    (tmp_path / "web_demo.py").write_text(PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "model").symlink_to(model_path)
    app = AppTest.from_file(str(tmp_path / "web_demo.py"), default_timeout=300)
    app.run()
    assert not app.exception and str(tmp_path / "model") in app.caption[0].value


def test_a_password_keeps_a_public_page_closed_until_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["web_demo.py", "--temperature", "0", "--max-new-tokens", "24"])
    monkeypatch.setenv("TUNECHAT_WEB_PASSWORD", "s3cret")
    app = AppTest.from_file(str(PAGE), default_timeout=300)
    app.run()
    assert not app.exception and not app.chat_input and app.text_input[0].label == "Password"
    app.text_input[0].set_value("wrong").run()
    assert not app.chat_input and app.error[0].value == "Wrong password."
    app.text_input[0].set_value("s3cret").run()
    assert not app.exception and app.chat_input  # the chat is open for this session

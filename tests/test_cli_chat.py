"""`tunechat chat` and `cli_demo.py` as a user runs them: piped, in a terminal, and with bad input."""
from __future__ import annotations

import os
import sys

import pytest

from tests.conftest import ROOT, run_cli


def test_piped_chat_answers_each_line_and_exits_zero():
    result = run_cli("chat", "--temperature", "0", "--max-new-tokens", "32", stdin="What is the capital of France?\n",
                     subprocess_=True)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1


def test_piped_chat_keeps_history_and_understands_commands(engine, monkeypatch, capsys):
    import io

    import sdk
    from tunechat.terminal import scripted

    greedy = {"temperature": 0, "max_new_tokens": 24}
    chat = sdk.Chat(engine, **greedy)
    script = "My name is Ada.\nWhat is my name?\n/reset\n/system You are a pirate.\nWhat is the capital of France?\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert scripted(chat, no_streamer=True) == 0
    printed = capsys.readouterr().out
    # The second question was asked with the first exchange in the prompt: its answer is the model's
    # answer to the whole conversation, not to the question alone.
    first = engine.chat([{"role": "user", "content": "My name is Ada."}], **greedy)
    second = engine.chat([{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": first},
                          {"role": "user", "content": "What is my name?"}], **greedy)
    # /reset forgot both turns; /system set the prompt (commands print nothing when piped).
    third = engine.chat([{"role": "system", "content": "You are a pirate."},
                         {"role": "user", "content": "What is the capital of France?"}], **greedy)
    assert printed == f"{first}\n{second}\n{third}\n"
    assert second != engine.chat([{"role": "user", "content": "What is my name?"}], **greedy)
    assert chat.system == "You are a pirate."
    assert chat.history == [{"role": "user", "content": "What is the capital of France?"},
                            {"role": "assistant", "content": third}]


@pytest.mark.parametrize(
    "args, message",
    [
        (["/does/not/exist"], "no such directory"),
        ([str(ROOT / "tests")], "not a model directory"),
        (["--temperature", "-1"], "temperature must be"),
        (["--top-p", "2"], "top_p must be"),
        (["--bits", "3"], "invalid choice: 3"),
        (["--prompt-template", "nope"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_nonzero_and_no_traceback(args, message):
    result = run_cli("chat", *args, stdin="hi\n")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_demo_is_the_chat_command():
    import subprocess

    result = subprocess.run([sys.executable, "cli_demo.py", "--temperature", "0", "--max-new-tokens", "24"],
                            input="What is the capital of France?\n", capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


@pytest.mark.slow
def test_terminal_chat_streams_stops_on_ctrl_c_and_keeps_going():
    pexpect = pytest.importorskip("pexpect")
    # A token limit the essay cannot reach before Ctrl-C even when this process is starved of CPU and
    # reads the streamed words late.
    child = pexpect.spawn(sys.executable, ["-m", "tunechat.cli", "chat", "--temperature", "0", "--max-new-tokens", "1500"],
                          # pexpect answers no cursor-position request: prompt_toolkit would wait for one and, on a
                          # loaded machine, drop the first line typed meanwhile.
                          cwd=str(ROOT), env={**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"},
                          encoding="utf-8", timeout=120, dimensions=(40, 200))
    child.expect("You:")
    child.sendline("Write a long essay about the history of Rome.")
    child.expect("BOT: ")
    child.expect(r"\w+ \w+ \w+")  # streaming has started
    child.sendintr()  # Ctrl-C stops the answer, not the chat
    child.expect(r"\[stopped\]")
    child.expect("You:")
    child.sendline("What is the capital of France?")
    child.expect("Paris")
    child.expect("You:")
    child.sendline("/reset")
    child.expect("conversation cleared")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_that_a_finalizer_swallows_is_still_seen():
    import signal

    from tunechat.terminal import ctrl_c

    class Interrupted:
        def __del__(self):  # Python prints and drops an exception raised here
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between these bytecodes
                pass

    before = signal.getsignal(signal.SIGINT)
    with ctrl_c() as pressed:
        Interrupted()  # no KeyboardInterrupt comes out of this line: Python dropped it
    assert pressed == [True]
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back

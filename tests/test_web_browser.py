"""The web page in a real browser: `tunechat web` serves it on a free localhost port and headless
Chromium (Debian's chromium + chromium-driver, driven by selenium) chats with it.

`make test` installs Chromium (`make browser`); without it these tests skip, saying so."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import serve, wait, webdriver, windows


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tunechat web --port P` (greedy, short answers), up until its health check answers."""
    with serve(["web", "--temperature", "0", "--max-new-tokens", "32"], tmp_path_factory.mktemp("web") / "server.log") as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., "webdriver.Chrome"]]:
    """Opens headless Chromium windows (each its own Streamlit session) on the page; all closed at the end."""
    with windows(tmp_path) as open_window:
        def open_page(url: str, width: int = 1200, height: int = 900) -> "webdriver.Chrome":
            driver = open_window(width, height)
            driver.get(url)
            chat_input(driver)  # the page is up and the model is loaded
            return driver

        yield open_page


def chat_input(driver):
    return wait(driver, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatInputTextArea]")
                                        if e.is_enabled()), None))


def messages(driver, who: str) -> list[str]:
    """Texts of the chat messages of `who` ("User" or "Assistant"), in order (their markdown and
    captions; not the Stop button)."""
    return driver.execute_script(  # in one step: the page re-renders while an answer streams
        "return [...document.querySelectorAll('[data-testid=stChatMessage]')]"
        ".filter(m => m.querySelector('[data-testid=stChatMessageAvatar' + arguments[0] + ']'))"
        ".map(m => [...m.querySelectorAll('[data-testid=stMarkdownContainer], [data-testid=stCaptionContainer]')]"
        ".filter(e => !e.closest('button')).map(e => e.innerText.trim()).join('\\n'))", who)


def stop_button(driver) -> list:
    return driver.find_elements(By.CSS_SELECTOR, ".st-key-stop button")


def send(driver, text: str) -> None:
    box = chat_input(driver)
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def answered(driver, count: int) -> bool:
    """`count` answers shown and none still being generated."""
    return len(messages(driver, "Assistant")) == count and not stop_button(driver)


def test_a_question_gets_a_streamed_answer(server: str, browser, tmp_path: Path) -> None:
    page = browser(server)
    assert "tunechat" in page.title and "SmolLM2-135M-Instruct" in page.find_element(By.TAG_NAME, "body").text
    send(page, "What is the capital of France?")
    wait(page, lambda d: answered(d, 1))
    assert messages(page, "User") == ["What is the capital of France?"]
    assert "Paris" in messages(page, "Assistant")[0]
    page.save_screenshot(str(tmp_path / "web_demo.png"))

    # A long answer, watched while it streams in, then stopped with the Stop button.
    tokens = page.find_element(By.CSS_SELECTOR, "input[aria-label='Max new tokens']")
    tokens.send_keys(Keys.CONTROL, "a")
    tokens.send_keys("1000", Keys.ENTER)
    wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Max new tokens']").get_attribute("value") == "1000")
    send(page, "Write a long story about a dragon who learns to bake bread.")
    partial = wait(page, lambda d: stop_button(d) and len(messages(d, "Assistant")) == 2
                   and len(messages(d, "Assistant")[1]) > 20 and messages(d, "Assistant")[1])
    stop_button(page)[0].click()
    wait(page, lambda d: "Stopped." in messages(d, "Assistant")[-1] if answered(d, 2) else False, timeout=60)
    story = messages(page, "Assistant")[1]
    assert story.startswith(partial[:20]) and len(story) < 2000  # cut short, not 1000 tokens long
    page.save_screenshot(str(tmp_path / "web_demo_stopped.png"))

    # The model is free again: the next question is answered.
    send(page, "Thanks!")
    wait(page, lambda d: answered(d, 3))


def test_two_sessions_at_once_each_see_only_their_own_history(server: str, browser, tmp_path: Path) -> None:
    first, second = browser(server), browser(server, width=420, height=860)  # the second one is narrow
    send(first, "What is the capital of France?")
    send(second, "What is the capital of Japan?")  # while the first is being answered
    for page in (first, second):
        wait(page, lambda d: answered(d, 1))
    assert messages(first, "User") == ["What is the capital of France?"]
    assert messages(second, "User") == ["What is the capital of Japan?"]
    assert "Paris" in messages(first, "Assistant")[0]
    assert "Tokyo" in messages(second, "Assistant")[0]
    second.save_screenshot(str(tmp_path / "web_demo_narrow.png"))

"""The studio in a real browser, the whole flow at tiny scale: `tunechat studio` on a free
localhost port, headless Chromium uploads a generated xlsx, maps its columns, trains a few steps
(the loss chart appears), stops and resumes the job, chats with the adapter and merges it.
Screenshots of every page, 1280 and 420 px wide, are saved in the test's temporary directory."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import serve, wait, windows
from tests.data_helpers import read_jsonl, write_excel_xlsx

PAGES = {"data": "", "train": "train", "evaluate": "evaluate", "chat": "chat", "export": "export"}  # name: URL path


def body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def button(driver, text: str):
    """The enabled button showing `text` (None while there is none)."""
    return next((b for b in driver.find_elements(By.CSS_SELECTOR, "[data-testid=stBaseButton-primary], "
                                                 "[data-testid=stBaseButton-secondary]")
                 if b.text.strip().endswith(text) and b.is_enabled()), None)


def press(driver, text: str) -> None:
    wait(driver, lambda d: button(d, text)).click()


def type_number(driver, label: str, value: int) -> None:
    box = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"input[aria-label='{label}']"))
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.ENTER)
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"input[aria-label='{label}']").get_attribute("value") == str(value))


def drawn(driver) -> None:
    """The page has run to its end: a title, and no placeholder or running indicator left."""
    wait(driver, lambda d: d.find_elements(By.TAG_NAME, "h1")
         and not d.find_elements(By.CSS_SELECTOR, "[data-testid=stSkeleton], [data-testid=stStatusWidget]"))


def unfold(driver, title: str) -> None:
    """Open the folded section (expander) titled `title`."""
    wait(driver, lambda d: next(e for e in d.find_elements(By.CSS_SELECTOR, "[data-testid=stExpander] summary")
                                if e.text.strip().endswith(title))).click()


def choose(driver, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label`: open it, click the option."""
    field = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"input[role=combobox][aria-label='{label}']"))
    field.click()
    wait(driver, lambda d: next(o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == option)).click()
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"input[role=combobox][aria-label='{label}']")
         .get_attribute("value") == option)


@pytest.mark.slow
def test_the_whole_flow_in_a_browser(tmp_path: Path) -> None:
    ws = tmp_path / "workspace"
    sheet = tmp_path / "qa.xlsx"
    write_excel_xlsx(sheet, {"QA": [["Question", "Answer"]] + [[f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}."]
                                                               for i in range(12)]})
    figures = {}
    with serve(["studio", "--workspace", str(ws)], tmp_path / "studio.log") as url, windows(tmp_path) as open_window:
        page = open_window(1280, 900)
        opened = time.monotonic()
        page.get(url)
        upload = wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "input[type=file]"))
        figures["open_to_interactive_s"] = round(time.monotonic() - opened, 2)
        assert "tunechat studio" in page.title

        # Data: upload, map the columns (the defaults: A is the question, B the answer), convert.
        upload.send_keys(str(sheet))
        wait(page, lambda d: "Answer column" in body(d))
        press(page, "Convert")
        wait(page, lambda d: "Converted into data/qa.jsonl" in body(d))
        assert read_jsonl(ws / "data" / "qa.jsonl")[1] == {"conversation": [{"input": "What is 1 plus 1?", "output": "1 plus 1 is 2."}]}
        wait(page, lambda d: "every record is valid" in body(d) and "Split into train and test" in body(d))
        page.save_screenshot(str(tmp_path / "data.png"))

        # Train: a few LoRA steps; the loss chart appears; Stop keeps a checkpoint; Resume finishes.
        page.get(f"{url}/train")
        wait(page, lambda d: button(d, "Start"))
        unfold(page, "Advanced")
        for label, value in (("Max steps", 6), ("Batch size", 2), ("Save every", 2)):
            type_number(page, label, value)
        choose(page, "Bits", "none")
        press(page, "Start")
        started = time.monotonic()
        wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=stVegaLiteChart]"))
        figures["start_to_first_loss_point_s"] = round(time.monotonic() - started, 2)
        page.save_screenshot(str(tmp_path / "train.png"))
        press(page, "Stop")
        wait(page, lambda d: "Stopped at step" in body(d))
        press(page, "Resume")
        wait(page, lambda d: "Finished: 6 steps." in body(d))
        metrics = json.loads((ws / "runs" / "run-1" / "logs" / "metrics.json").read_text())
        assert metrics["steps"] == 6 and metrics["resumed_from"]
        page.save_screenshot(str(tmp_path / "train_done.png"))

        # Chat with the adapter.
        page.get(f"{url}/chat")
        choose(page, "Model", "runs/run-1/adapter (adapter)")
        box = wait(page, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatInputTextArea]")
                                         if e.is_enabled()), None))
        box.send_keys("What is 2 plus 2?", Keys.ENTER)
        wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatMessage]")) == 2
             and not d.find_elements(By.CSS_SELECTOR, ".st-key-stop button")
             and d.find_elements(By.CSS_SELECTOR, "[data-testid=stChatMessage]")[1].text.strip())
        page.save_screenshot(str(tmp_path / "chat.png"))

        # Merge, with its verification shown.
        page.get(f"{url}/export")
        press(page, "Merge")
        wait(page, lambda d: "Max logit difference" in body(d))
        assert (ws / "models" / "run-1" / "config.json").is_file()
        page.save_screenshot(str(tmp_path / "export.png"))
        page.get(f"{url}/evaluate")
        wait(page, lambda d: "Tuned model" in body(d))
        drawn(page)
        page.save_screenshot(str(tmp_path / "evaluate.png"))

        narrow = open_window(420, 860)
        for name, path in PAGES.items():
            narrow.get(f"{url}/{path}")
            drawn(narrow)
            narrow.save_screenshot(str(tmp_path / f"{name}_narrow.png"))
    (tmp_path / "figures.json").write_text(json.dumps(figures, indent=2))
    print(f"studio figures: {figures}; screenshots in {tmp_path}")

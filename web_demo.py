"""The tutorial's `web_demo.py`: chat with a model in the browser.

    streamlit run web_demo.py                       # the embedded SmolLM2-135M-Instruct
    streamlit run web_demo.py -- merged/ --bits 4   # your fine-tuned model (flags as `tunechat web`)
    tunechat web merged/                            # the same, bound to 127.0.0.1

Hosted (Hugging Face Spaces, Streamlit Community Cloud, OpenXLab), the file runs unchanged: the
model is $TUNECHAT_MODEL or a `model/` directory beside it, and $TUNECHAT_WEB_PASSWORD puts the
page behind a password (README, "Deploy the chat"). The page itself is `tunechat.webchat`, which
the studio (`tunechat studio`) shows as its Chat page."""
from pathlib import Path

from tunechat.webchat import main

if __name__ == "__main__":  # as `streamlit run` runs it; importing the module shows nothing
    main(Path(__file__).resolve().parent)

"""Chat: the web chat (`tunechat.webchat`, what `web_demo.py` shows) over the workspace's models."""
from __future__ import annotations

import streamlit as st

from tunechat import webchat
from tunechat.options import parse_page_args
from tunechat.studio import jobs, ui

ws = ui.workspace()
ui.job_sidebar(ws, jobs.state(ws))
models = ws.chat_models()
webchat.page(parse_page_args([]), models)
model, adapter = models.get(st.session_state.get("chat_model"), (None, None))
target = [ws.rel(model) if model else "embedded"] + (["--adapter", ws.rel(adapter)] if adapter else [])
ui.show_command(ws, ["chat", *target], "This chat in a shell", where=st.sidebar)

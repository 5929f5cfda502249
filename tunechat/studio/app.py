"""The studio's main script: `tunechat studio` runs it with `streamlit run`. Pages, in the order
of the pipeline: Data → Train → Evaluate → Chat → Export (tunechat/studio/pages/)."""
from __future__ import annotations

import streamlit as st

PAGES = [("pages/data.py", "Data", ":material/table:"), ("pages/train.py", "Train", ":material/model_training:"),
         ("pages/evaluate.py", "Evaluate", ":material/fact_check:"), ("pages/chat.py", "Chat", ":material/forum:"),
         ("pages/export.py", "Export", ":material/ios_share:")]

st.set_page_config(page_title="tunechat studio", page_icon=":material/neurology:", layout="wide")
st.navigation([st.Page(path, title=title, icon=icon) for path, title, icon in PAGES]).run()

"""Export: `tunechat merge` (verified: its maximum logit difference is shown) and `tunechat export
gguf`, with downloads."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import streamlit as st

from sdk.export import QUANTS
from sdk.metadata import read_metadata
from tunechat.studio import ui

ws, busy = ui.start_page(":material/ios_share: Export", runs_models="Merging and exporting run models")


def merge() -> None:
    adapters = ws.adapters()
    if not adapters:
        st.info("No adapter yet: train a run on the Train page.")
        return
    adapter = st.selectbox("Adapter", adapters)
    base = read_metadata(ws.path(adapter)).get("base_model") or "embedded"
    run = Path(adapter).parent.name
    left, right = st.columns(2)
    out = left.text_input("Merged model", value=f"models/{run}")
    dtype = right.selectbox("Weights", ["fp32", "bf16", "fp16"])
    force = st.checkbox("Replace it if it exists", value=False)
    argv = ["merge", base if base == "embedded" else ws.rel(base), adapter, out, "--dtype", dtype] + (["--force"] if force else [])
    if st.button("Merge", type="primary", icon=":material/merge:", disabled=bool(busy)):
        if ui.guarded(ws.path, out) is not None:
            with st.spinner("Merging and verifying against base + adapter…"):
                ran = ui.run_command(ws, argv)
            if ui.show_result(ran, f"Merged into {out}"):
                check = read_metadata(ws.path(out))["merge"]
                st.metric("Max logit difference vs base + adapter", f"{check['max_logit_diff']:.2e}",
                          help=f"The merge is refused beyond {check['tolerance']}.")
    ui.show_command(ws, argv)


def gguf() -> None:
    sources = ws.merged_models()
    if not sources:
        st.info("Merge a model first: the GGUF export starts from a merged model.")
        return
    left, right = st.columns(2)
    model = left.selectbox("Merged model", sources)
    quant = right.selectbox("Weights", list(QUANTS), index=list(QUANTS).index("q8_0"),
                            help="q8_0 keeps the answers; k-quants are smaller and graded by the verification.")
    out = f"exports/{Path(model).name}.{quant}.gguf"
    force = st.checkbox("Replace it if it exists", value=False, key="gguf_force")
    argv = ["export", "gguf", model, out, "--quant", quant, "--ollama"] + (["--force"] if force else [])
    if st.button("Export", type="primary", icon=":material/deployed_code:", disabled=bool(busy)):
        with st.spinner("Converting, quantizing and verifying…"):
            ui.show_result(ui.run_command(ws, argv), f"Exported {out}")
    ui.show_command(ws, argv)


def downloads() -> None:
    files = {**{f"{a} (zip)": a for a in ws.adapters()}, **{g: g for g in ws.exports()}}
    if not files:
        st.caption("Adapters and GGUF files can be downloaded here once there are some.")
        return
    chosen = st.selectbox("File", list(files))
    path = ws.path(files[chosen])
    # The bytes are made when the button is pressed, not on every rerun of the page.
    if path.is_dir():
        st.download_button("Download", lambda: zipped(path), file_name=f"{path.parent.name}-adapter.zip",
                           icon=":material/download:")
    else:
        st.download_button("Download", path.read_bytes, file_name=path.name, icon=":material/download:")


def zipped(folder: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(shutil.make_archive(str(Path(tmp) / folder.parent.name), "zip", folder)).read_bytes()


merge_tab, gguf_tab, download_tab = st.tabs(["Merge", "GGUF", "Downloads"])
with merge_tab:
    merge()
with gguf_tab:
    gguf()
with download_tab:
    downloads()

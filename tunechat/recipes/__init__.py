"""The demo recipes: one pipeline (`pipeline.run_pipeline`: data → before → train → merge →
after → report) and two recipes for it, the identity fine-tune (`tunechat demo`) and the tool
fine-tune (`tunechat demo --tools`)."""

"""The tutorial's `cli_demo.py`, done as a thin wrapper: `python cli_demo.py [MODEL] [chat flags]`.

With no arguments it chats with the embedded model; `python cli_demo.py merged/` chats with your
fine-tuned model. All of `tunechat chat --help` applies."""
import sys

from tunechat.cli import main

if __name__ == "__main__":
    sys.exit(main(["chat", *sys.argv[1:]]))

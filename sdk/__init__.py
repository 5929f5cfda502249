"""tunechat's SDK: load a model, chat with it, fine-tune it, serve it.

    import sdk
    engine = sdk.load()                        # the embedded SmolLM2-135M-Instruct
    engine.chat([{"role": "user", "content": "Who are you?"}], temperature=0)
    chat = sdk.Chat(engine, system="You are ...", temperature=0.7, seed=0)
    chat.send("hi")
"""
from sdk.chat import Chat
from sdk.engine import Engine, Generation, load
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig
from sdk.models import embedded_model_path

__all__ = ["Chat", "Engine", "Generation", "GenerationConfig", "TunechatError", "embedded_model_path", "load"]

"""tunechat's SDK: load a model, chat with it, fine-tune it, serve it.

    import sdk
    engine = sdk.load()                        # the embedded SmolLM2-135M-Instruct
    engine.chat([{"role": "user", "content": "Who are you?"}], temperature=0)
    chat = sdk.Chat(engine, system="You are ...", temperature=0.7, seed=0)
    chat.send("hi")
    remote = sdk.load("http://127.0.0.1:8000/v1")  # the same interface over an OpenAI-compatible server
"""
from sdk.chat import Chat
from sdk.engines import BaseEngine, Engine, Generation, RemoteEngine, load
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig
from sdk.models import embedded_model_path

__all__ = ["BaseEngine", "Chat", "Engine", "Generation", "GenerationConfig", "RemoteEngine", "TunechatError",
           "embedded_model_path", "load"]

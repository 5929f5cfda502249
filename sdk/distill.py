"""Self-distilled regularization answers: the base model answering general questions itself.

Identity data mixed with these teaches the name without teaching "answer everything with the
name": on the regularization questions the fine-tune has nothing to change. Used by
`tunechat data identity` and `tunechat demo`."""
from __future__ import annotations

from sdk.engines.base import BaseEngine


def self_answers(engine: BaseEngine, questions: list[str], system: str | None = None, max_new_tokens: int = 64,
                 progress: bool = False, batch_size: int = 128) -> list[str]:
    """`engine`'s greedy answers, `batch_size` at a time (see `BaseEngine.chat_many`), with `system` as
    the training data will have it, and a progress bar on stderr with `progress`. An answer cut by the token limit is
    trimmed back to its last whole sentence ("" if none): one that stops mid-word would teach the
    model to stop mid-word."""
    import sys

    from tqdm import tqdm

    from datasets_builders.identity import trim_to_sentence

    head = [{"role": "system", "content": system}] if system else []
    replies = []
    with tqdm(total=len(questions), desc="base model answering", unit="question", file=sys.stderr,
              disable=not progress) as bar:
        for start in range(0, len(questions), batch_size):
            batch = questions[start:start + batch_size]
            replies += engine.chat_many([[*head, {"role": "user", "content": q}] for q in batch],
                                        temperature=0, max_new_tokens=max_new_tokens, batch_size=batch_size)
            bar.update(len(batch))
    return [trim_to_sentence(r.text) if r.finish_reason == "length" else r.text for r in replies]

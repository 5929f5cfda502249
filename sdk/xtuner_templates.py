"""XTuner 0.2.0's prompt templates (`xtuner/utils/templates.py`: PROMPT_TEMPLATE, SYSTEM_TEMPLATE), all of
them, strings exactly as XTuner writes them. tests/test_templates.py checks every field against the file in
XTuner's own wheel. Where 0.1.x differed (`qwen_chat` put a newline before each turn), 0.2.0 is followed.

`chatml` is tunechat's own name: XTuner has no template by that name, but its `internlm2_chat` is ChatML."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Template:
    """An XTuner prompt template. With `suffix_as_eos` False, the tokenizer's EOS ends each answer.
    `system` None: the template has no system role (the renderer folds a system prompt into the
    first user message)."""

    name: str
    system: str | None
    instruction: str
    suffix: str = ""
    suffix_as_eos: bool = False
    sep: str = ""
    stop_words: tuple[str, ...] = field(default_factory=tuple)


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in [
        Template(
            "default",
            system="<|System|>:{system}\n",
            instruction="<|User|>:{input}\n<|Bot|>:",
            sep="\n",
        ),
        Template(
            "zephyr",
            system="<|system|>\n{system}\n",
            instruction="<|user|>\n{input}\n<|assistant|>\n",
            sep="\n",
        ),
        Template(
            "internlm_chat",
            system="<|System|>:{system}\n",
            instruction="<|User|>:{input}<eoh>\n<|Bot|>:",
            suffix="<eoa>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<eoa>",),
        ),
        Template(
            "internlm2_chat",
            system="<|im_start|>system\n{system}<|im_end|>\n",
            instruction="<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            suffix="<|im_end|>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<|im_end|>",),
        ),
        Template(
            "moss_sft",
            system="{system}\n",
            instruction="<|Human|>: {input}<eoh>\n",
            sep="\n",
            stop_words=("<eoc>", "<eom>"),
        ),
        Template(
            "llama2_chat",
            system=(
                "[INST] <<SYS>>\n You are a helpful, respectful and honest assistant. Always answer as"
                " helpfully as possible, while being safe. Your answers should not include any harmful,"
                " unethical, racist, sexist, toxic, dangerous, or illegal content. Please ensure that your"
                " responses are socially unbiased and positive in nature.\n{system}\n<</SYS>>\n [/INST] "
            ),
            instruction="[INST] {input} [/INST]",
            sep="\n",
        ),
        Template(
            "code_llama_chat",
            system="{system}\n",
            instruction="[INST] {input} [/INST]",
        ),
        Template(
            "chatglm2",
            system="{system}\n",
            instruction="[Round {round}]\n\n问：{input}\n\n答：",
            sep="\n\n",
        ),
        Template(
            "chatglm3",
            system="<|system|>\n{system}",
            instruction="<|user|>\n{input}<|assistant|>\n",
            sep="\n",
        ),
        Template(
            "qwen_chat",
            system="<|im_start|>system\n{system}<|im_end|>\n",
            instruction="<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            suffix="<|im_end|>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<|im_end|>", "<|endoftext|>"),
        ),
        Template(
            "baichuan_chat",
            system="{system}\n",
            instruction="<reserved_102>{input}<reserved_103>",
            sep="\n",
        ),
        Template(
            "baichuan2_chat",
            system="{system}\n",
            instruction="<reserved_106>{input}<reserved_107>",
            sep="\n",
        ),
        Template(
            "wizardlm",
            system=(
                "A chat between a curious user and an artificial intelligence assistant. The assistant"
                " gives helpful, detailed, and polite answers to the user's questions. {system}\n "
            ),
            instruction="USER: {input} ASSISTANT:",
            sep="\n",
        ),
        Template(
            "wizardcoder",
            system=(
                "Below is an instruction that describes a task. Write a response that appropriately"
                " completes the request.\n\n{system}\n "
            ),
            instruction="### Instruction:\n{input}\n\n### Response:",
            sep="\n\n",
        ),
        Template(
            "deepseek_coder",
            system=(
                "You are an AI programming assistant, utilizing the DeepSeek Coder model, developed by"
                " DeepSeekCompany, and you only answer questions related to computer science. For"
                " politically sensitive questions, security and privacy issues, and other non-computer"
                " science questions, you will refuse to answer. {system}\n"
            ),
            instruction="### Instruction:\n{input}\n### Response:\n",
            sep="\n",
        ),
        Template(
            "deepseek_moe",
            system="[INST] {system} [/INST]\n",
            instruction="[INST] {input} [/INST]",
            sep="\n",
        ),
        Template(
            "deepseek_v2",
            system="{system}\n\n",
            instruction="User: {input}\n\nAssistant: ",
            suffix="<｜end▁of▁sentence｜>",
            suffix_as_eos=True,
            stop_words=("<｜end▁of▁sentence｜>",),
        ),
        Template(
            "mistral",
            system="[INST] {system} [/INST]\n",
            instruction="[INST] {input} [/INST]",
            sep="\n",
        ),
        Template(
            "minicpm",
            system=None,
            instruction="<用户> {input} <AI>",
            sep="\n",
        ),
        Template(
            "minicpm3",
            system="<|im_start|>system\n{system}<|im_end|>\n",
            instruction="<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            suffix="<|im_end|>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<|im_end|>", "<|endoftext|>"),
        ),
        Template(
            "gemma",
            system="<start_of_turn>system\n{system}<end_of_turn>\n",
            instruction="<start_of_turn>user\n{input}<end_of_turn>\n<start_of_turn>model\n",
            suffix="<end_of_turn>",
            sep="\n",
            stop_words=("<end_of_turn>",),
        ),
        Template(
            "cohere_chat",
            system="<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{system}<|END_OF_TURN_TOKEN|>",
            instruction=(
                ""
                "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{input}<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
            ),
            suffix="<|END_OF_TURN_TOKEN|>",
            suffix_as_eos=True,
            stop_words=("<|END_OF_TURN_TOKEN|>",),
        ),
        Template(
            "llama3_chat",
            system="<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>",
            instruction=(
                ""
                "<|start_header_id|>user<|end_header_id|>\n\n{input}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            suffix="<|eot_id|>",
            suffix_as_eos=True,
            stop_words=("<|eot_id|>",),
        ),
        Template(
            "phi3_chat",
            system="<|system|>\n{system}<|end|>\n",
            instruction="<|user|>\n{input}<|end|>\n<|assistant|>\n",
            suffix="<|end|>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<|end|>",),
        ),
    ]
}
# Names XTuner gives the very same strings: its deprecated `deepseekcoder`, and templates it wrote twice.
for alias, same in {"deepseekcoder": "deepseek_coder", "mixtral": "mistral", "vicuna": "wizardlm"}.items():
    TEMPLATES[alias] = dataclasses.replace(TEMPLATES[same], name=alias)
TEMPLATES["chatml"] = dataclasses.replace(TEMPLATES["internlm2_chat"], name="chatml")


# XTuner 0.2.0's SYSTEM_TEMPLATE: ready-made system prompts for `--system-template`.
SYSTEM_TEMPLATES: dict[str, str] = {
    "moss_sft": (
        "You are an AI assistant whose name is {bot_name}.\n"
        "Capabilities and tools that {bot_name} can possess.\n"
        "- Inner thoughts: enabled.\n"
        "- Web search: enabled. API: Search(query)\n"
        "- Calculator: enabled. API: Calculate(expression)\n"
        "- Equation solver: enabled. API: Solve(equation)\n"
        "- Text-to-image: disabled.\n"
        "- Image edition: disabled.\n"
        "- Text-to-speech: disabled.\n"
    ),
    "alpaca": "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n",
    "arxiv_gentile": (
        "If you are an expert in writing papers, please generate a good paper title for this paper "
        "based on other authors' descriptions of their abstracts.\n"
    ),
    "colorist": "You are a professional color designer. Please provide the corresponding colors based on the description of Human.\n",
    "coder": "You are a professional programer. Please provide the corresponding code based on the description of Human.\n",
    "lawyer": "你现在是一名专业的中国律师，请根据用户的问题给出准确、有理有据的回复。\n",
    "medical": "如果你是一名医生，请根据患者的描述回答医学问题。\n",
    "sql": "If you are an expert in SQL, please generate a good SQL Query for Question based on the CREATE TABLE statement.\n",
}

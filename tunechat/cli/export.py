"""`tunechat export gguf MODEL OUT.gguf`: the model as one GGUF file for llama.cpp, Ollama and LM
Studio, carrying its tokenizer, chat template and tunechat's serving settings (system prompt,
stop words, template name).

MODEL is a merged model directory (`embedded` for the embedded model), or a base model with
--adapter (merged in memory first). The export is verified against the HF model before it is
kept: f32/f16/bf16/q8_0 must give the same 32 greedy tokens on the probe prompts with logits
within a bound; k-quants are graded by top-1 agreement and perplexity on a fixed text. The
figures are printed and written to OUT.gguf.json. Needs llama-cpp-python (`make install`)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from sdk.export import QUANTS

    parser = sub.add_parser("export", help="export a model to GGUF (llama.cpp, Ollama)", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", metavar="FORMAT", required=True)
    gguf = kinds.add_parser("gguf", help="one verified GGUF file (+ an Ollama Modelfile with --ollama)", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    gguf.add_argument("model", metavar="MODEL", help="a merged model directory, a base model with --adapter, or `embedded`")
    gguf.add_argument("out", metavar="OUT.gguf", help="the file to write (refused if it exists, unless --force)")
    gguf.add_argument("--quant", default="q8_0", type=str.lower, choices=list(QUANTS),
                      help="weight type (default q8_0: 8-bit, answers kept; f16/bf16 larger, q5_k_m/q4_k_m smaller and graded)")
    gguf.add_argument("--adapter", default=None, help="a LoRA adapter to merge into MODEL (in memory) before exporting")
    gguf.add_argument("--ollama", action="store_true", help="also write an Ollama Modelfile beside OUT")
    gguf.add_argument("--force", action="store_true", help="replace an existing OUT")
    gguf.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sdk.export import export_gguf, figures_path

    result = export_gguf(None if args.model == "embedded" else args.model, args.out, quant=args.quant,
                         adapter=args.adapter, force=args.force, ollama=args.ollama)
    print(f"wrote {result.path} ({result.quant}, {result.size_bytes / 2**20:.1f} MiB) in {result.seconds:.0f} s")
    print(f"verified against the HF model: {result.verification.summary()}")
    if result.note:
        print(f"note: {result.note} (llama.cpp's k-quants need rows that are a multiple of 256)")
    print(f"figures: {figures_path(result.path)}")
    if result.modelfile:
        print(f"Ollama: ollama create NAME -f {result.modelfile} && ollama run NAME")
    print(f"chat with it: tunechat chat {result.path}")
    return 0

"""Preference training: DPO, IPO, ORPO and SimPO losses on the same Trainer, data and outputs as SFT.

A batch holds each pair as two sequences, chosen then rejected (`Collator` with pairs), and the loss
needs each sequence's log-probability of its answer tokens. The formulas are TRL's:

    dpo    -log σ(β·[(π_c − ref_c) − (π_r − ref_r)])          summed log-probs, Rafailov et al. 2023
           (+ rpo_alpha · NLL(chosen): RPO, Pang et al. 2024; DPO alone can push the rejected
           answers down without making the chosen ones likely)
    ipo    ([(π̄_c − ref̄_c) − (π̄_r − ref̄_r)] − 1/(2β))²       per-token means, Azar et al. 2023
    orpo   NLL(chosen) − β·log σ(log odds(π̄_c) − log odds(π̄_r)), no reference, Hong et al. 2024
    simpo  −log σ(β·(π̄_c − π̄_r) − γ), no reference, Meng et al. 2024 (γ = SIMPO_GAMMA)

The reference of DPO and IPO is the base model itself: the same weights with the LoRA adapter
switched off, so there is no second copy of the model."""
from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from sdk.training.data import IGNORE, answer_positions

DEFAULT_BETA = {"dpo": 0.1, "ipo": 0.1, "orpo": 0.1, "simpo": 2.0}
NEEDS_REFERENCE = ("dpo", "ipo")
SIMPO_GAMMA = 0.5


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, sequence: torch.Tensor,
                   count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sequence's summed log-probability of its trained tokens, and how many there are.
    `logits` are the model's at `answer_positions(labels)` only (as the collator asked);
    `sequence[row, k]` is the sequence that the k-th kept position of `row` predicts for."""
    keep = answer_positions(labels)
    targets = labels[:, 1:][:, keep]
    trained = targets != IGNORE
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    index = sequence[trained]
    sums = torch.zeros(count, dtype=logp.dtype, device=logp.device).index_add(0, index, logp[trained])
    tokens = torch.zeros(count, dtype=logp.dtype, device=logp.device).index_add(0, index, torch.ones_like(logp[trained]))
    return sums, tokens


def preference_loss(method: str, beta: float, policy: tuple[torch.Tensor, torch.Tensor],
                    reference: tuple[torch.Tensor, torch.Tensor] | None = None,
                    rpo_alpha: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The mean loss over the pairs, and per-batch metrics: the implicit rewards of the chosen and
    rejected answers, their margin and how often the chosen one wins (accuracy). `rpo_alpha` adds
    that multiple of the chosen answers' NLL to DPO/IPO (TRL's rpo_alpha)."""
    sums, tokens = policy
    means = sums / tokens.clamp(min=1)
    nll = -sums[0::2].sum() / tokens[0::2].sum().clamp(min=1)  # per chosen-answer token
    if method in NEEDS_REFERENCE:
        ref_sums, ref_tokens = reference
        ratio = sums - ref_sums if method == "dpo" else means - ref_sums / ref_tokens.clamp(min=1)
        chosen, rejected = beta * ratio[0::2], beta * ratio[1::2]
        logits = ratio[0::2] - ratio[1::2]
        if method == "dpo":
            losses = -torch.nn.functional.logsigmoid(beta * logits)
        else:
            losses = (logits - 1 / (2 * beta)) ** 2
        losses = losses + rpo_alpha * nll
    else:
        chosen, rejected = beta * means[0::2], beta * means[1::2]
        if method == "orpo":
            log_odds = (means - torch.log1p(-torch.exp(means).clamp(max=1 - 1e-6)))
            losses = nll - beta * torch.nn.functional.logsigmoid(log_odds[0::2] - log_odds[1::2])
        else:
            losses = -torch.nn.functional.logsigmoid(beta * (means[0::2] - means[1::2]) - SIMPO_GAMMA)
    metrics = {"reward_chosen": chosen.mean(), "reward_rejected": rejected.mean(),
               "reward_margin": (chosen - rejected).mean(), "reward_accuracy": (chosen > rejected).float().mean()}
    return losses.mean(), {k: v.detach() for k, v in metrics.items()}


class PreferenceTrainer(Trainer):
    """The Trainer with a pair loss. Its metrics are averaged over the steps between log lines
    and logged beside the loss (so they reach the JSONL log, the progress bar and the plot)."""

    loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it over accumulation

    def __init__(self, *args: Any, method: str, beta: float, rpo_alpha: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.method, self.beta, self.rpo_alpha = method, beta, rpo_alpha
        self._metrics: dict[str, list[float]] = {}

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        inputs = dict(inputs)
        labels, sequence = inputs.pop("labels"), inputs.pop("sequence")
        count = int(sequence.max()) + 1
        outputs = model(**inputs)
        policy = sequence_logps(outputs.logits, labels, sequence, count)
        reference = None
        if self.method in NEEDS_REFERENCE:
            base = self.accelerator.unwrap_model(model)
            with torch.no_grad(), base.disable_adapter():
                reference = sequence_logps(base(**inputs).logits, labels, sequence, count)
        loss, metrics = preference_loss(self.method, self.beta, policy, reference, self.rpo_alpha)
        prefix = "" if model.training else "eval_"
        for name, value in metrics.items():
            self._metrics.setdefault(prefix + name, []).append(float(value))
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        evaluating = any(key.startswith("eval_") for key in logs)
        for name in [n for n in self._metrics if n.startswith("eval_") == evaluating]:
            values = self._metrics.pop(name)
            logs[name] = round(sum(values) / len(values), 6)
        super().log(logs, start_time)

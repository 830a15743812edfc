"""Log-probabilities of the supervised tokens only, with the LM head run in small chunks.

On a small model the vocabulary-wide logits are the largest tensors of a training step: SmolLM2's
head maps 576 numbers to 49,152 per position. Two things keep them small here, for SFT and
preference training alike:
- the head runs only where a token is trained (assistant tokens for SFT, the answer for DPO); the
  prompt, system text and padding never get logits;
- ``SelectedLogp`` computes ``log p(target)`` a chunk of positions at a time and keeps only one
  number per position (the log-normaliser) for the backward pass, which recomputes each chunk's
  logits instead of storing them. That costs one extra head matmul per trained token and removes
  the two full ``[tokens, vocab]`` tensors (logits and log-softmax) autograd would otherwise keep.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ownchat.train.collate import IGNORE

CHUNK_ELEMENTS = 1 << 24  # logits per chunk (64 MB in fp32): small next to activations, big enough for BLAS


def unwrap_causal_lm(model):
    """The transformers ``*ForCausalLM`` inside PEFT / DDP wrappers."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


class SelectedLogp(torch.autograd.Function):
    """``log softmax(h @ W.T)[target]`` per row of ``h``, chunked; logits are recomputed in backward."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        step = max(1, CHUNK_ELEMENTS // weight.shape[0])
        wide = torch.promote_types(h.dtype, torch.float32)  # softmax in fp32 even for bf16 models
        lse = torch.empty(h.shape[0], dtype=wide, device=h.device)
        picked = torch.empty_like(lse)
        for s in range(0, h.shape[0], step):
            logits = (h[s:s + step] @ weight.T).to(wide)
            lse[s:s + step] = torch.logsumexp(logits, -1)
            picked[s:s + step] = logits.gather(1, target[s:s + step, None]).squeeze(1)
        ctx.save_for_backward(h, weight, target, lse)
        ctx.step = step
        return picked - lse

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, weight, target, lse = ctx.saved_tensors
        step = ctx.step
        grad_h = torch.empty_like(h) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight, dtype=lse.dtype) if ctx.needs_input_grad[1] else None
        for s in range(0, h.shape[0], step):
            hc = h[s:s + step]
            # d logp[target] / d logits = onehot(target) - softmax, scaled by the incoming gradient
            g = torch.exp((hc @ weight.T).to(lse.dtype) - lse[s:s + step, None])
            g.mul_(-grad[s:s + step, None])
            g.scatter_add_(1, target[s:s + step, None], grad[s:s + step, None].to(lse.dtype))
            g = g.to(h.dtype)
            if grad_h is not None:
                grad_h[s:s + step] = g @ weight
            if grad_w is not None:
                grad_w += (g.T @ hc).to(lse.dtype)
        return grad_h, (grad_w.to(weight.dtype) if grad_w is not None else None), None


def selected_logps(hidden: torch.Tensor, head: nn.Module, target: torch.Tensor, softcap: float | None) -> torch.Tensor:
    """``log p(target)`` for each row of ``hidden`` ([N, H]) under the output layer ``head``."""
    plain_linear = isinstance(head, nn.Linear) and head.bias is None and type(head) is nn.Linear
    if plain_linear and not softcap:
        return SelectedLogp.apply(hidden, head.weight, target)
    logits = head(hidden).float()  # unusual heads (bias, LoRA on the head, soft-capping): the plain way
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.log_softmax(-1).gather(1, target[:, None]).squeeze(1)


class TokenLogps(nn.Module):
    """``forward(input_ids, targets, ...) -> (log p of each supervised token [N], row of each [N])``.

    A module (rather than the loop calling the model's parts) so DDP/FSDP stay correct: accelerate
    wraps the module that owns the forward pass, so every forward goes through the wrapper's hooks.
    """

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        lm = unwrap_causal_lm(model)
        self._split = hasattr(lm, "get_decoder") and lm.get_output_embeddings() is not None
        self._softcap = getattr(lm.config, "final_logit_softcapping", None)

    def token_logps(self, input_ids, targets, position_ids=None, attention_mask=None):
        sel = targets != IGNORE
        rows = sel.nonzero()[:, 0]
        if self._split:
            lm = unwrap_causal_lm(self.model)
            h = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                 use_cache=False).last_hidden_state
            return selected_logps(h[sel], lm.get_output_embeddings(), targets[sel], self._softcap), rows
        # models without a separable head: full logits, then select
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            use_cache=False).logits[sel].float()
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits.log_softmax(-1).gather(1, targets[sel][:, None]).squeeze(1), rows


class TokenLoss(TokenLogps):
    """The SFT objective: ``forward(batch) -> (summed NLL over supervised tokens, number of them)``."""

    def forward(self, input_ids, targets, position_ids=None, attention_mask=None):
        logp, _ = self.token_logps(input_ids, targets, position_ids, attention_mask)
        return -logp.sum(), logp.new_tensor(logp.numel())


def row_sums(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Sum per-token ``values`` into their rows (``rows[i]`` is the row of token i)."""
    return torch.zeros(n_rows, dtype=values.dtype, device=values.device).index_add(0, rows, values)

"""Temperature scaling (Guo et al., 2017): one number T that divides the logits so that the softmax's
confidence matches how often the model is right. Accuracy is unchanged (the argmax is the same).

Neither torchmetrics nor Lightning fits it; it is a one-parameter minimisation of the negative
log-likelihood on held-out data, done here with torch's own L-BFGS."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# T outside this range means the held-out set is too small or degenerate to trust the fit.
TEMPERATURE_RANGE = (0.05, 20.0)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature minimising the cross-entropy of `logits / T` against `labels` (held-out
    data: the validation split). 1.0 when there is nothing to fit on: no images, or no mistakes
    (then the likelihood grows without bound as T shrinks, and any fit would claim certainty)."""
    if len(labels) == 0 or bool((logits.argmax(dim=1) == labels).all()):
        return 1.0
    # Called from validation hooks, which run in inference mode: leave it, and copy the inputs out.
    with torch.inference_mode(False), torch.enable_grad():
        logits, labels = logits.detach().double().cpu().clone(), labels.long().cpu().clone()
        log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [log_temperature], lr=1.0, max_iter=100, line_search_fn="strong_wolfe"
        )

        def nll() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(logits / log_temperature.exp(), labels)
            loss.backward()
            return loss

        optimizer.step(nll)
        temperature = float(log_temperature.detach().exp())
    if not torch.isfinite(torch.tensor(temperature)):
        return 1.0
    return min(max(temperature, TEMPERATURE_RANGE[0]), TEMPERATURE_RANGE[1])


def calibrated(logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Class probabilities from logits at a fitted temperature."""
    return (logits.float() / temperature).softmax(dim=1)

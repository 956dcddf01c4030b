"""An exponential moving average of a model's weights, the output of a stage that sets `ema_decay`.

After every optimiser step the average moves a fraction (1 - decay) of the way to the trained
weights: average <- decay * average + (1 - decay) * weights, for every floating-point tensor of
the model's state (its weights and its batch-norm running statistics; integer counters are left
as they start). Its horizon is about 1 / (1 - decay) steps (0.998: the last 500 or so), so it
smooths the step-to-step noise of the last part of a stage. It never feeds back into training:
the optimiser steps the trained weights exactly as without it.
"""
from __future__ import annotations

import copy

import torch


def floating_state(model: torch.nn.Module) -> list[torch.Tensor]:
    """The model's floating-point state tensors (weights and buffers), as views of its own storage."""
    return [v for v in model.state_dict().values() if v.is_floating_point()]


class WeightAverage:
    """An exponential moving average (`decay` in (0, 1)) of `model`'s floating-point state.

    `average_model` is a copy of the model (same layout and memory format) holding the average; it
    starts at the model's weights when the average is made. `update(model)` after every optimiser step.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"WeightAverage: decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.average_model = copy.deepcopy(model)
        self.average_model.requires_grad_(False)
        self._average = floating_state(self.average_model)
        self._source: torch.nn.Module | None = None  # the trained model of the last update, and its state's views
        self._current: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """average <- decay * average + (1 - decay) * model's state, tensor by tensor."""
        if model is not self._source:  # the optimiser steps its tensors in place: their views stay valid
            current = floating_state(model)
            if len(current) != len(self._average):
                raise ValueError(f"WeightAverage.update: the model has {len(current)} floating-point tensors, "
                                 f"the average {len(self._average)}")
            self._source, self._current = model, current
        torch._foreach_lerp_(self._average, self._current, 1.0 - self.decay)

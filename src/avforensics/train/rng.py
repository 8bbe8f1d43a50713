"""Random state in checkpoints, so dropout and noise after a resume are the ones an uninterrupted run draws.

Lightning checkpoints do not carry random generator states. This callback stores those of every process
(python, numpy, torch CPU and CUDA), in plain tensors and tuples so the file loads with
`torch.load(weights_only=True)`, and puts them back right before the first training batch after a resume:
whatever runs between restore and that batch (data loader start-up, validation) cannot shift them.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_warn


def collect_random_state() -> dict[str, Any]:
    """Generator states as plain Python values (bytes, ints, tuples): safe to gather across processes and
    to load with `weights_only=True`."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, np.asarray(keys, dtype=np.uint32).tobytes(), position, has_gauss, cached),
        "torch": _to_bytes(torch.get_rng_state()),
        "cuda": [_to_bytes(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def restore_random_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.frombuffer(keys, dtype=np.uint32).copy(), position, has_gauss, cached))
    torch.set_rng_state(_from_bytes(state["torch"]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_from_bytes(s) for s in state["cuda"]])


def _to_bytes(state: torch.Tensor) -> bytes:
    return state.numpy().tobytes()


def _from_bytes(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _as_tuple(value: Any) -> Any:
    """random.setstate needs nested tuples; a checkpoint round trip may hand back lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


class RandomStateCheckpoint(pl.Callback):
    """Saves each process's random state with every checkpoint and restores it on resume."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        # Called on every rank while a checkpoint is dumped; rank 0 writes the file, so it gathers all.
        state = collect_random_state()
        if dist.is_available() and dist.is_initialized():
            states: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(states, state)
            return {"per_rank": states}
        return {"per_rank": [state]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict["per_rank"]
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if rank >= len(states):
            rank_zero_warn(
                f"checkpoint holds random states of {len(states)} processes, resuming with more; "
                "extra processes reuse rank 0's state, so their random draws differ from an uninterrupted run"
            )
            rank = 0
        self._pending = states[rank]

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self._pending is not None:
            restore_random_state(self._pending)
            self._pending = None

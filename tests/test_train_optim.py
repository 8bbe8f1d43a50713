"""Learning-rate schedules evaluated per step from epoch-based settings, and the resumable sampler."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avforensics.experiment.config import OptimConfig
from avforensics.train.optim import build_optimizer, build_scheduler
from avforensics.train.sampling import ResumableLoader, ShardedSampler


def _lrs(config: OptimConfig, steps_per_epoch: int, steps: int) -> list[float]:
    optimizer = build_optimizer(nn.Linear(2, 1).named_parameters(), config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_av_prompt_schedule_drops_tenfold_after_twelve_epochs() -> None:
    # Miao et al.: Adam, lr 1e-4, 15 epochs, x0.1 at epoch 12 (7 steps per epoch here).
    config = OptimConfig(optimizer="adam", lr=1e-4, schedule="multistep", milestones=[12], epochs=15)
    lrs = _lrs(config, steps_per_epoch=7, steps=15 * 7)
    per_epoch = [lrs[epoch * 7 : (epoch + 1) * 7] for epoch in range(15)]
    for epoch, values in enumerate(per_epoch):
        expected = 1e-4 if epoch < 12 else 1e-5
        assert values == pytest.approx([expected] * 7, rel=1e-12), epoch


def test_lr_scales_by_longest_prefix_survive_the_schedule() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)))
    config = OptimConfig(optimizer="adam", lr=1e-4, schedule="multistep", milestones=[1], epochs=2)
    optimizer = build_optimizer(model.named_parameters(), config, {"1.": 10.0, "1.1.": 3.0})
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=2)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert [lr_of[id(p)] for p in model[0].parameters()] == pytest.approx([1e-4, 1e-4])
    assert [lr_of[id(p)] for p in model[1][0].parameters()] == pytest.approx([1e-3, 1e-3])
    assert [lr_of[id(p)] for p in model[1][1].parameters()] == pytest.approx([3e-4, 3e-4])
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert sorted(group["lr"] for group in optimizer.param_groups) == pytest.approx([1e-5, 3e-5, 1e-4])
    with pytest.raises(ValueError, match="must be positive"):
        build_optimizer(model.named_parameters(), config, {"1.": 0.0})


def test_warmup_then_cosine_and_step_schedules() -> None:
    cosine = OptimConfig(lr=1.0, schedule="cosine", warmup_epochs=1, epochs=3, min_lr=0.1)
    lrs = _lrs(cosine, steps_per_epoch=4, steps=12)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warmup over epoch 0
    assert lrs[4] == pytest.approx(1.0)  # cosine starts at the top after warmup
    assert lrs[8] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the 2 cosine epochs
    assert lrs[11] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * 7 / 8)).item()))
    step = OptimConfig(lr=1.0, schedule="step", step_size=2, gamma=0.5, epochs=6)
    assert _lrs(step, steps_per_epoch=1, steps=6) == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])


def test_sampler_shards_cover_the_single_process_batches_and_skip_on_resume() -> None:
    single = list(ShardedSampler(10, shuffle=True, seed=3, drop_last=True))
    ranks = [list(ShardedSampler(10, shuffle=True, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    # Local batch k (size 2) of both ranks together = global batch k (size 4) of one process.
    for k in range(2):
        local = ranks[0][2 * k : 2 * k + 2] + ranks[1][2 * k : 2 * k + 2]
        assert sorted(local) == sorted(single[4 * k : 4 * k + 4])
    sampler = ShardedSampler(10, shuffle=True, seed=3)
    sampler.set_epoch(1)
    epoch_one = list(sampler)
    assert epoch_one != single and sorted(epoch_one) == list(range(10))
    sampler.skip_next(4)
    assert list(sampler) == epoch_one[4:]
    assert list(sampler) == epoch_one  # the skip applies once
    shards = [ShardedSampler(5, shuffle=False, seed=0, rank=r, world_size=2, drop_last=False) for r in (0, 1)]
    assert [list(shard) for shard in shards] == [[0, 2, 4], [1, 3]]
    assert [len(shard) for shard in shards] == [3, 2]


def test_loader_state_resumes_after_the_batches_handed_out() -> None:
    def loader(world_size: int = 1) -> ResumableLoader:
        sampler = ShardedSampler(12, shuffle=True, seed=5, world_size=world_size)
        return ResumableLoader(list(range(12)), sampler, batch_size=2, drop_last=True)

    first = loader()
    first.sharded_sampler.set_epoch(2)
    full = [batch.tolist() for batch in first]
    iterator = iter(first)
    seen = [next(iterator).tolist() for _ in range(2)]
    state = first.state_dict()
    assert state == {"epoch": 2, "batches_done": 2, "batch_size": 2, "world_size": 1}

    second = loader()
    second.load_state_dict(state)
    assert seen + [batch.tolist() for batch in second] == full
    with pytest.raises(ValueError, match="batches of 2 on 1 processes, this run 2 on 2"):
        loader(world_size=2).load_state_dict(state)


def test_adamw_on_cpu_takes_the_multi_tensor_path_with_the_same_update() -> None:
    """foreach on CPU (fused is chosen only where every parameter is on a GPU: tests/test_gpu.py)."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    reference = nn.Linear(4, 3)
    reference.load_state_dict(model.state_dict())
    start = model.weight.detach().clone()
    config = OptimConfig(optimizer="adamw", lr=1e-2, weight_decay=0.1)
    optimizer = build_optimizer(model.named_parameters(), config)
    assert optimizer.defaults["foreach"] is True and not optimizer.defaults["fused"]
    plain = torch.optim.AdamW(reference.parameters(), lr=1e-2, betas=config.betas, weight_decay=0.1,
                              foreach=False)
    inputs = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        for module, opt in ((model, optimizer), (reference, plain)):
            opt.zero_grad()
            module(inputs).square().sum().backward()
            opt.step()
    assert torch.allclose(model.weight, reference.weight, atol=1e-6)
    assert (model.weight - start).abs().min() > 1e-3  # three steps of lr 1e-2 moved every weight

"""The frozen-feature cache: hits on repeats, misses on changed inputs or weights, bounds, disk entries."""

from __future__ import annotations

import warnings

import pytest
import torch
from cad_fixtures import tiny_batch, tiny_cad

from avforensics.models.cad.cache import FeatureCache, clip_keys


def _entry(value: float, numel: int = 256) -> dict[str, torch.Tensor]:
    return {"video": torch.full((numel,), value)}  # 1 KiB of float32


@pytest.mark.parametrize("adapted", ["all layers", "last layer"])
def test_model_second_pass_hits_and_gives_identical_outputs(adapted):
    """Cached: the shared features and the inputs of the first adapted CLIP / LoRA Whisper layer."""
    last = {"adapter": {"layers": [1], "attention_heads": 2}, "lora_layers": [1]}
    model = (tiny_cad(**last) if adapted == "last layer" else tiny_cad()).eval()
    batch = tiny_batch(3)
    with torch.no_grad():
        first = model(batch)
        assert (model.feature_cache.stats.misses, model.feature_cache.stats.hits) == (3, 0)
        second = model(batch)
        uncached = tiny_cad(**(last if adapted == "last layer" else {}), cache_mb=0).eval()
        uncached.load_state_dict(model.state_dict())
        reference = uncached(batch)
    assert (model.feature_cache.stats.misses, model.feature_cache.stats.hits) == (3, 3)
    assert torch.equal(first.logits, second.logits)
    assert torch.allclose(first.logits, reference.logits, atol=1e-5)
    entry = model.feature_cache.get(next(iter(model.feature_cache._entries)))
    assert set(entry) == {"video", "audio", "video_prefix", "audio_prefix"}
    assert entry["video_prefix"].shape == (4, 1 + 16, 32)  # T frames x (CLS + 4x4 patches) x width


def test_changed_inputs_or_weights_miss():
    model = tiny_cad().eval()
    batch = tiny_batch(2)
    with torch.no_grad():
        model(batch)
        edited = dict(batch, frames=batch["frames"].clone())
        edited["frames"][1, 0, 0, 0, 0] += 1e-3  # one pixel of one clip
        model(edited)
        assert (model.feature_cache.stats.hits, model.feature_cache.stats.misses) == (1, 3)
        model.whisper.layers[0].fc1.weight.mul_(1.01)  # frozen weights changed in place
        model(batch)
    assert (model.feature_cache.stats.hits, model.feature_cache.stats.misses) == (1, 5)


def test_disk_entries_serve_a_new_process_and_not_other_weights(tmp_path):
    batch = tiny_batch(2)
    writer = tiny_cad(cache_dir=str(tmp_path)).eval()
    with torch.no_grad():
        expected = writer(batch).logits
    assert len(list(tmp_path.rglob("*.pt"))) == 2
    reader = tiny_cad(cache_dir=str(tmp_path)).eval()  # same config: same frozen weights, same keys
    reader.load_state_dict(writer.state_dict())
    with torch.no_grad():
        assert torch.equal(reader(batch).logits, expected)
    assert (reader.feature_cache.stats.disk_hits, reader.feature_cache.stats.misses) == (2, 0)
    other = tiny_cad(cache_dir=str(tmp_path), backbone_seed=1).eval()  # other random towers
    with torch.no_grad():
        other(batch)
    assert (other.feature_cache.stats.disk_hits, other.feature_cache.stats.misses) == (0, 2)


def test_memory_bound_evicts_least_recently_used():
    cache = FeatureCache(max_bytes=3 * 1024)
    for name in "abc":
        cache.put(name, _entry(1.0))
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("d", _entry(2.0))
    assert len(cache) == 3 and cache.memory_bytes == 3 * 1024
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("d") is not None
    cache.put("huge", _entry(0.0, numel=4096))  # larger than the whole bound: not kept
    assert cache.get("huge") is None and len(cache) == 3


def test_unreadable_disk_entry_warns_with_its_path_and_is_recomputed(tmp_path):
    cache = FeatureCache(max_bytes=0, directory=tmp_path)
    cache.put("ab12", _entry(3.0))
    path = tmp_path / "ab" / "ab12.pt"
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match=r"ab12\.pt: unreadable feature-cache entry"):
        assert cache.get("ab12") is None
    cache.put("ab12", _entry(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(cache.get("ab12")["video"], torch.full((256,), 3.0))


def test_keys_depend_on_id_window_content_and_context():
    frames = torch.zeros(2, 3)
    base = clip_keys(["v", "v"], torch.tensor([0, 1]), [frames], "weights-a")
    assert base[0] != base[1]  # same content, other window
    assert clip_keys(["v", "v"], torch.tensor([0, 1]), [frames], "weights-b")[0] != base[0]
    assert clip_keys(["w", "v"], torch.tensor([0, 1]), [frames], "weights-a")[0] != base[0]
    assert clip_keys(["v", "v"], torch.tensor([0, 1]), [frames + 1], "weights-a")[0] != base[0]
    assert clip_keys(["v", "v"], torch.tensor([0, 1]), [frames], "weights-a") == base


def test_rows_cached_on_one_device_join_rows_computed_on_another():
    """A hit kept on the CPU (an earlier epoch, the disk) beside a miss computed where the model runs:
    the batch comes back whole on the model's device (the GPU run failed here with a device mismatch)."""
    cache = FeatureCache(max_bytes=16 * 1024)
    cache.put("cpu-row", _entry(1.0))
    meta = torch.device("meta")

    def compute(rows: torch.Tensor) -> dict[str, torch.Tensor]:
        assert rows.device == meta and rows.shape == (1,)  # the one missing row
        return {"video": torch.empty(len(rows), 256, device=meta)}

    features = cache.rows(["cpu-row", "new-row"], compute, meta)
    assert features["video"].device == meta and features["video"].shape == (2, 256)
    assert cache.get("new-row")["video"].device == meta  # kept where it was computed
    assert (cache.stats.hits, cache.stats.misses) == (2, 1)

"""Shared pytest fixtures. Helper functions and constants live in the `*_fixtures.py` modules beside
this file, imported by name; fixtures live here so pytest finds them without imports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from data_windows_fixtures import one_torch_thread
from inference_fixtures import tiny_config


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Many engineers share 2 cores here; tiny models run far faster on one thread than fighting for two."""
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """tiny_av trained for a few epochs on the shared prepared synthetic corpus, with the validation table
    the engine computed in its last evaluation (captured from the metrics hook)."""
    from data_windows_fixtures import synthetic_corpus

    from avforensics.train import run

    corpus, records, prepared = synthetic_corpus(tmp_path_factory)
    tables: list[dict[str, list]] = []
    engine_metrics = run.validation_metrics

    def recording_metrics(table: dict[str, list]) -> dict[str, float]:
        tables.append(table)
        return engine_metrics(table)

    torch.set_num_threads(1)
    config = tiny_config(corpus, prepared)
    run_dir = tmp_path_factory.mktemp("tiny_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "validation_metrics", recording_metrics)
        result = run.train(config, run_dir)
    return {"checkpoint": result.last_checkpoint, "table": tables[-1], "records": records,
            "corpus": corpus, "prepared": prepared, "config": config}

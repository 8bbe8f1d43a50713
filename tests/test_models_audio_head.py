"""Each detector's `audio_head_ignores_video` says truly whether its audio logit depends on the frames
(inference scores audio-only files from that head only where it does not)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import avprompt_fixtures
import cad_fixtures
import macbdf_fixtures
import pytest
import torch

CASES: dict[str, tuple[Callable[[], Any], Callable[[], dict], bool]] = {
    "avprompt": (avprompt_fixtures.tiny_model, avprompt_fixtures.tiny_batch, True),
    "cad": (cad_fixtures.tiny_cad, cad_fixtures.tiny_batch, True),
    "macbdf with cross-modal levels": (macbdf_fixtures.tiny_model, macbdf_fixtures.tiny_batch, False),
    "macbdf without levels": (lambda: macbdf_fixtures.tiny_model(depth=0), macbdf_fixtures.tiny_batch, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_declaration_matches_what_the_frames_change(case: str, one_thread: None) -> None:
    build, make_batch, expected = CASES[case]
    model = build().eval()
    with torch.no_grad():  # as after training: zero-initialised gates (MACB-DF's guides) open
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    batch = make_batch()
    other = {**batch, "frames": torch.randn_like(batch["frames"])}
    with torch.no_grad():
        audio, audio_with_other_frames = model(batch).audio_logits, model(other).audio_logits
    present = batch["audio_present"].to(torch.bool)
    unchanged = torch.allclose(audio[present], audio_with_other_frames[present], atol=1e-6)
    assert model.audio_head_ignores_video is expected
    assert unchanged is expected

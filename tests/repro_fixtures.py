"""Fixture trees for the paper-table rows: the adapters' trees plus what some protocols need beyond them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from data_fixtures import write_clip, write_idforge_v2


def write_idforge_v2_with_val(root: Path) -> Path:
    """write_idforge_v2's tree plus a val/ folder (a real and a fake shot of id03), as the release has."""
    write_idforge_v2(root)
    for forgery_type in ("pristine", "face_tts"):
        shot = root / "val" / forgery_type / "id03" / "id03_01" / "id03_scene_0001.mp4"
        shot.mkdir(parents=True)
        np.save(shot / "frames_ndarray.npy", np.zeros((16, 8, 8, 3), dtype=np.uint8))
        write_clip(shot / f"{shot.name}.mp3", "mp3")
    return root

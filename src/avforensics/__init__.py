"""avforensics: audio-visual deepfake video detection on one media pipeline, engine and inference API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Detector", "__version__"]

if TYPE_CHECKING:
    from avforensics.inference.detector import Detector


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import avforensics` (and the command's start) does not import torch.
    if name == "Detector":
        from avforensics.inference.detector import Detector

        return Detector
    raise AttributeError(f"module 'avforensics' has no attribute {name!r}")

"""CAD: cross-modal alignment and distillation (Du et al. 2025); importing registers model "cad"."""

from avforensics.models.cad.model import CADDetector

__all__ = ["CADDetector"]

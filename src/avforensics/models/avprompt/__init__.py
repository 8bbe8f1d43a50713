"""avprompt: multi-task audio-visual prompt learning (Miao et al., AAAI 2025); see docs/models/avprompt.md."""

from avforensics.models.avprompt.model import AVPromptDetector

__all__ = ["AVPromptDetector"]

"""DefakeAVMiT (AVoiD-DF, Yang et al. 2023): read through a generic manifest, because its format is unknown.

The dataset is not public ("due to protocol restrictions, the datasets and weights are not publicly
available"; the AVoiD-DF README only offers a request link), and the released code only reads
pre-extracted frame and spectrogram images. So its on-disk layout cannot be known; whoever obtains it
writes a manifest.csv (path,label,video_label,audio_label,method,identity,split) next to the videos.
"""

from __future__ import annotations

from avforensics.data.adapters.manifest import MANIFEST_NAME, ManifestAdapter


class DefakeAVMiTAdapter(ManifestAdapter):
    name = "defakeavmit"
    description = "DefakeAVMiT (not public): through a manifest.csv you write"

    def __init__(self) -> None:
        super().__init__(self.name)

    def expected_layout(self) -> str:
        return (
            f"a {MANIFEST_NAME} (columns path,label[,video_label,audio_label,method,identity,split]): "
            "DefakeAVMiT is not publicly distributed and its file layout is not documented, so this "
            "adapter cannot read it directly; write a manifest for your copy"
        )

"""Dataset adapters: one module per dataset, each turning the dataset as distributed into VideoRecords.

from avforensics.data.adapters import get_adapter, list_adapters
records = get_adapter("fakeavceleb").records("/data/FakeAVCeleb_v1.2")
"""

from __future__ import annotations

from avforensics.data.adapters.avdeepfake1m import AVDeepfake1MAdapter
from avforensics.data.adapters.base import DatasetAdapter, DatasetLayoutError, DatasetMetadataError
from avforensics.data.adapters.celebdf import CelebDFAdapter
from avforensics.data.adapters.defakeavmit import DefakeAVMiTAdapter
from avforensics.data.adapters.dfdc import DFDCAdapter, DFDCPreviewAdapter
from avforensics.data.adapters.faceforensics import FaceForensicsAdapter
from avforensics.data.adapters.fakeavceleb import FakeAVCelebAdapter
from avforensics.data.adapters.idforge import IDForgeV1Adapter, IDForgeV2Adapter
from avforensics.data.adapters.kodf import KoDFAdapter
from avforensics.data.adapters.lavdf import LAVDFAdapter
from avforensics.data.adapters.manifest import ManifestAdapter
from avforensics.data.adapters.synthetic import SyntheticAdapter

_ADAPTERS: dict[str, type[DatasetAdapter]] = {
    adapter.name: adapter
    for adapter in (
        FakeAVCelebAdapter,
        DFDCAdapter,
        DFDCPreviewAdapter,
        LAVDFAdapter,
        AVDeepfake1MAdapter,
        KoDFAdapter,
        IDForgeV1Adapter,
        IDForgeV2Adapter,
        FaceForensicsAdapter,
        CelebDFAdapter,
        DefakeAVMiTAdapter,
        ManifestAdapter,
        SyntheticAdapter,
    )
}


def list_adapters() -> dict[str, str]:
    """Adapter name -> one-line description of the layout it reads."""
    return {name: adapter.description for name, adapter in _ADAPTERS.items()}


def get_adapter(name: str, **options: object) -> DatasetAdapter:
    """The adapter registered as `name`, built with its options (e.g. faceforensics: compression="c40")."""
    if name not in _ADAPTERS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(_ADAPTERS))}")
    return _ADAPTERS[name](**options)


__all__ = ["DatasetAdapter", "DatasetLayoutError", "DatasetMetadataError", "get_adapter", "list_adapters"]

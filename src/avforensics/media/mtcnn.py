"""MTCNN face detector (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", 2016), written from the paper; weights shipped in `mtcnn_weights/` (MIT: NOTICE.md).

Cascade: P-Net scans an image pyramid (scale factor 0.709, smallest face 20 px) as a fully convolutional
12x12 window classifier with stride 2; R-Net (24 px) and O-Net (48 px) re-score the surviving candidates.
Every stage calibrates its boxes with the regressed offsets and merges overlaps with non-maximum
suppression; O-Net also gives five landmarks (eyes, nose, mouth corners).

The three state dicts are facenet-pytorch's published files, shipped inside this package (that package is
never a dependency: it imports torchvision); the networks below are our own modules whose parameter names
match the files exactly (`load_state_dict(strict=True)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avforensics.media.boxcrop import crop_resize
from avforensics.media.boxes import nms

WEIGHTS_DIR = Path(__file__).resolve().with_name("mtcnn_weights")
_PNET_WINDOW, _PNET_STRIDE = 12, 2
_RNET_SIZE, _ONET_SIZE = 24, 48


class MTCNNWeightsNotFound(FileNotFoundError):
    """An MTCNN weight file is missing (a broken install, or a wrong `weights` directory)."""


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    """Map 0-255 RGB to about [-1, 1], the input range the published weights were trained with."""
    return (pixels - 127.5) * 0.0078125


def _flatten_transposed(features: torch.Tensor) -> torch.Tensor:
    """Flatten (N, C, H, W) in (W, H, C) order.

    The weights descend from the original Caffe/MATLAB model, trained on transposed images; the
    convolution kernels were converted, but the dense layers still expect that feature order.
    """
    return features.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal network: a 12x12 face/non-face classifier and box regressor, run fully convolutionally."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) normalised -> face probability (N, H', W') and offsets (N, 4, H', W')."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x).softmax(dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 24, 24) normalised -> face probability (N,) and offsets (N, 4)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_transposed(self.prelu3(self.conv3(x)))))
        return self.dense5_1(x).softmax(dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network on 48x48 crops: final score, offsets and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, 48, 48) normalised -> probability (N,), offsets (N, 4), landmarks (N, 10): 5 x then 5 y."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_transposed(self.prelu4(self.conv4(x)))))
        return self.dense6_1(x).softmax(dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def load_network(network: nn.Module, name: str, directory: Path | None = None) -> nn.Module:
    """Load `<name>.pt` strictly into `network` and switch it to inference mode."""
    path = (directory or WEIGHTS_DIR) / f"{name}.pt"
    if not path.is_file():
        raise MTCNNWeightsNotFound(f"{path}: MTCNN weight file missing; reinstall avforensics "
                                   "(the weights ship inside the package)")
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return network.eval().requires_grad_(False)


# ---------------------------------------------------------------- box calibration
def _calibrate(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Apply regressed offsets, expressed as fractions of the box width/height, to xyxy boxes."""
    sizes = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * sizes


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of its longer side around the same centre (the networks see squares)."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centres - half, centres + half], dim=1)


# ---------------------------------------------------------------- detector
@dataclass
class FaceDetections:
    """Faces found in one image, best first: boxes (n, 4) xyxy pixels, probs (n,), landmarks (n, 5, 2) x,y.

    Landmark order: left eye, right eye (as seen in the image), nose, left and right mouth corners.
    """

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.probs)


@dataclass
class _Candidates:
    """Candidate boxes of a batch of images during the cascade: all tensors share the first dimension."""

    boxes: torch.Tensor  # (n, 4)
    scores: torch.Tensor  # (n,)
    images: torch.Tensor  # (n,) index of the image in the batch

    def select(self, index: torch.Tensor) -> _Candidates:
        return _Candidates(self.boxes[index], self.scores[index], self.images[index])

    @staticmethod
    def concat(parts: list[_Candidates]) -> _Candidates:
        return _Candidates(
            torch.cat([torch.zeros((0, 4))] + [part.boxes for part in parts]),
            torch.cat([torch.zeros(0)] + [part.scores for part in parts]),
            torch.cat([torch.zeros(0, dtype=torch.long)] + [part.images for part in parts]),
        )


class MTCNN:
    """Three-stage cascade detector. `detect` takes RGB uint8 frames and returns one FaceDetections each.

    Frames of equal size go through the pyramid together in batches of `batch_size`, so a video costs one
    network call per pyramid level per batch rather than per frame.
    """

    def __init__(
        self,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        nms_thresholds: tuple[float, float, float, float] = (0.5, 0.7, 0.7, 0.7),
        batch_size: int = 8,
        weights: Path | None = None,
    ) -> None:
        """`nms_thresholds`: within one pyramid level, across levels, after R-Net, after O-Net (min-mode)."""
        if min_face_size < 1 or not 0 < scale_factor < 1 or batch_size < 1:
            raise ValueError(
                f"invalid MTCNN settings: min_face_size={min_face_size}, scale_factor={scale_factor}, "
                f"batch_size={batch_size}"
            )
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        self.nms_thresholds = nms_thresholds
        self.batch_size = batch_size
        # The few-channel convolutions and pooling of all three networks run about twice as fast
        # channels-last (same results to float rounding).
        self.pnet = load_network(PNet(), "pnet", weights).to(memory_format=torch.channels_last)
        self.rnet = load_network(RNet(), "rnet", weights).to(memory_format=torch.channels_last)
        self.onet = load_network(ONet(), "onet", weights).to(memory_format=torch.channels_last)

    def detect(self, images: np.ndarray | Sequence[np.ndarray]) -> list[FaceDetections]:
        """Detect faces in RGB uint8 images: an (N, H, W, 3) array or a sequence of (H, W, 3) arrays."""
        images = list(images) if not isinstance(images, np.ndarray) or images.ndim == 4 else [images]
        for index, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f"image {index}: expected RGB uint8 of shape (H, W, 3), got {image.dtype} {image.shape}"
                )
        results: list[FaceDetections | None] = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.shape[:2], []).append(index)
        with torch.inference_mode():
            for indices in by_size.values():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    batch = torch.from_numpy(np.stack([images[i] for i in chunk])).permute(0, 3, 1, 2)
                    for index, found in zip(chunk, self._detect_batch(batch.float()), strict=True):
                        results[index] = found
        return results  # type: ignore[return-value]

    # -- stages
    def _scales(self, height: int, width: int) -> list[float]:
        scale = _PNET_WINDOW / self.min_face_size
        scales = []
        while min(height, width) * scale >= _PNET_WINDOW:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    def _propose(self, pixels: torch.Tensor) -> _Candidates:
        """Stage 1: P-Net over the pyramid; calibrated candidates merged within, then across, levels."""
        height, width = pixels.shape[2:]
        levels = []
        # Each level is resized from the previous one, so the pyramid costs about two full-size resizes.
        resized = pixels.contiguous()
        for scale in self._scales(height, width):
            size = (max(_PNET_WINDOW, round(height * scale)), max(_PNET_WINDOW, round(width * scale)))
            resized = F.interpolate(resized, size=size, mode="bilinear", antialias=True, align_corners=False)
            probs, offsets = self.pnet(_normalise(resized).contiguous(memory_format=torch.channels_last))
            image, row, col = (probs >= self.thresholds[0]).nonzero(as_tuple=True)
            # Output cell (row, col) saw the 12x12 window at (2*col, 2*row) of the resized image; map it
            # back through the actual per-axis resize ratio (rounding makes that differ from `scale`).
            x1, y1 = col * _PNET_STRIDE, row * _PNET_STRIDE
            windows = torch.stack([x1, y1, x1 + _PNET_WINDOW, y1 + _PNET_WINDOW], dim=1).float()
            windows = windows * torch.tensor([width / size[1], height / size[0]] * 2)
            boxes = _calibrate(windows, offsets[image, :, row, col])
            level = _Candidates(boxes, probs[image, row, col], image)
            levels.append(level.select(nms(level.boxes, level.scores, self.nms_thresholds[0], level.images)))
        merged = _Candidates.concat(levels)
        return merged.select(nms(merged.boxes, merged.scores, self.nms_thresholds[1], merged.images))

    @staticmethod
    def _crops(pixels: torch.Tensor, candidates: _Candidates, size: int) -> torch.Tensor:
        """Square crops of every candidate, resized to the next network's input, in candidate order."""
        crops = pixels.new_zeros((len(candidates.scores), 3, size, size))
        for image in candidates.images.unique():
            members = (candidates.images == image).nonzero(as_tuple=True)[0]
            crops[members] = crop_resize(pixels[image], candidates.boxes[members], size)
        return _normalise(crops).contiguous(memory_format=torch.channels_last)

    def _refine(self, pixels: torch.Tensor, candidates: _Candidates) -> _Candidates:
        """Stage 2: R-Net re-scores squared candidates; survivors calibrated and merged."""
        candidates = _Candidates(_square(candidates.boxes), candidates.scores, candidates.images)
        probs, offsets = self.rnet(self._crops(pixels, candidates, _RNET_SIZE))
        keep = probs >= self.thresholds[1]
        boxes = _calibrate(candidates.boxes[keep], offsets[keep])
        refined = _Candidates(boxes, probs[keep], candidates.images[keep])
        return refined.select(nms(refined.boxes, refined.scores, self.nms_thresholds[2], refined.images))

    def _output(self, pixels: torch.Tensor, candidates: _Candidates) -> tuple[_Candidates, torch.Tensor]:
        """Stage 3: O-Net scores, calibrates and places landmarks (relative to its input box)."""
        candidates = _Candidates(_square(candidates.boxes), candidates.scores, candidates.images)
        probs, offsets, points = self.onet(self._crops(pixels, candidates, _ONET_SIZE))
        keep = probs >= self.thresholds[2]
        boxes = candidates.boxes[keep]
        origin, extent = boxes[:, None, :2], (boxes[:, 2:] - boxes[:, :2])[:, None, :]
        landmarks = origin + torch.stack([points[keep, :5], points[keep, 5:]], dim=2) * extent
        final = _Candidates(_calibrate(boxes, offsets[keep]), probs[keep], candidates.images[keep])
        order = nms(final.boxes, final.scores, self.nms_thresholds[3], final.images, mode="min")
        return final.select(order), landmarks[order]

    def _detect_batch(self, pixels: torch.Tensor) -> list[FaceDetections]:
        """Run the cascade on (N, 3, H, W) float 0-255 pixels of equal size."""
        candidates = self._propose(pixels)
        if len(candidates.scores):
            candidates = self._refine(pixels, candidates)
        landmarks = torch.zeros((0, 5, 2))
        if len(candidates.scores):
            candidates, landmarks = self._output(pixels, candidates)
        results = []
        for image in range(pixels.shape[0]):
            mine = candidates.images == image
            results.append(
                FaceDetections(
                    boxes=candidates.boxes[mine].numpy().astype(np.float32),
                    probs=candidates.scores[mine].numpy().astype(np.float32),
                    landmarks=landmarks[mine].numpy().astype(np.float32),
                )
            )
        return results

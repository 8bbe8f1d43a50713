"""Face test data built from skimage's astronaut photo (the only real face photo a registry ships)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F

# Reference face box (x1, y1, x2, y2) in the 512x512 astronaut image, set by eye: a 150x160 crop around
# the head was drawn with a 10 px grid and viewed; the cheek contours at cheekbone height lie at x = 182
# and x = 268, the chin at y = 172, and the top is put at y = 75, the middle of the fringe that covers
# the forehead. It is independent of the detector's own output.
ASTRONAUT_FACE_BOX = np.array([182.0, 75.0, 268.0, 172.0])


def astronaut() -> np.ndarray:
    """The 512x512 RGB uint8 astronaut photo."""
    return skimage.data.astronaut()


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    """IoU of two xyxy boxes."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    inter = max(width, 0.0) * max(height, 0.0)
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return float(inter / (area - inter))


@dataclass(frozen=True)
class Camera:
    """A virtual camera over a still image: a `width` x `height` frame showing `side` source pixels
    across, centred on `centre` (source pixel coordinates). Moving and zooming it makes a test video."""

    centre: tuple[float, float]
    side: float
    width: int
    height: int

    @property
    def zoom(self) -> float:
        return self.width / self.side

    def origin(self) -> np.ndarray:
        """Source coordinates of the frame's top-left corner."""
        half_extent = np.array([self.width, self.height]) / self.zoom / 2
        return np.array(self.centre) - half_extent

    def render(self, image: np.ndarray) -> np.ndarray:
        """The (height, width, 3) uint8 frame; outside the source repeats its border pixels."""
        x0, y0 = self.origin()
        xs = x0 + (np.arange(self.width) + 0.5) / self.zoom
        ys = y0 + (np.arange(self.height) + 0.5) / self.zoom
        grid_y, grid_x = torch.meshgrid(
            torch.tensor(ys / image.shape[0] * 2 - 1, dtype=torch.float32),
            torch.tensor(xs / image.shape[1] * 2 - 1, dtype=torch.float32),
            indexing="ij",
        )
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        grid = torch.stack([grid_x, grid_y], dim=-1)[None]
        frame = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return frame[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()

    def map_box(self, box: np.ndarray) -> np.ndarray:
        """An xyxy box of the source image in this frame's coordinates."""
        return (box - np.tile(self.origin(), 2)) * self.zoom

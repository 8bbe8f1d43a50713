"""Face test data built from skimage's astronaut photo (the only real face photo a registry ships)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F

from avforensics.media.mtcnn import FaceDetections

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


def pan_zoom_cameras(count: int, width: int = 320, height: int = 240) -> list[Camera]:
    """A camera that pans across the astronaut while zooming in from the upper body to the head."""
    progress = np.linspace(0.0, 1.0, count)
    return [
        Camera(centre=(260 - 50 * p, 190 - 60 * p), side=420 - 200 * p, width=width, height=height)
        for p in progress
    ]


def two_face_frames(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (count, 240, 400, 3) with the astronaut's head at full size, static on the left, and a
    half-size copy drifting on the right; returns the frames and both faces' reference boxes per frame."""
    head = astronaut()[30:210, 140:310]  # 180 x 170 crop around the face
    small = head[::2, ::2]
    frames = np.full((count, 240, 400, 3), 128, dtype=np.uint8)
    big_origin = np.array([20.0, 30.0])
    big_box = ASTRONAUT_FACE_BOX - np.tile(np.array([140.0, 30.0]) - big_origin, 2)
    small_boxes = []
    for index in range(count):
        x0, y0 = 240 + index, 60 + index // 2
        frames[index, 30:210, 20:190] = head
        frames[index, y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
        small_boxes.append((ASTRONAUT_FACE_BOX - np.array([140.0, 30.0] * 2)) / 2 + np.array([x0, y0] * 2))
    return frames, np.tile(big_box, (count, 1)), np.array(small_boxes)


class ScriptedDetector:
    """A stand-in detector that returns given boxes per image, in call order, to test tracking logic."""

    def __init__(self, script: list[list[tuple[list[float], float]]]) -> None:
        self.script = script
        self.calls = 0

    def detect(self, images):  # noqa: ANN001, ANN201 - duck-typed like MTCNN.detect
        results = []
        for _ in images:
            faces = self.script[self.calls]
            self.calls += 1
            boxes = np.array([box for box, _ in faces], dtype=np.float32).reshape(-1, 4)
            probs = np.array([prob for _, prob in faces], dtype=np.float32)
            results.append(FaceDetections(boxes, probs, np.zeros((len(faces), 5, 2), dtype=np.float32)))
        return results


def talking_head_frames(count: int = 60, width: int = 640, height: int = 360) -> np.ndarray:
    """A 16:9 interview shot at detection size: the camera sways around the astronaut's head and zooms
    slowly, then cuts to a wider shot two thirds in (as benchmarks/talking_head.py films it)."""
    cut = round(count * 2 / 3)
    frames = []
    for index in range(count):
        t = index / 25
        wide = index >= cut
        side = 2 * (330.0 if wide else 250.0 - 4.0 * t)
        centre = (225.0 + 12.0 * np.sin(1.3 * t) + (30.0 if wide else 0.0), 150.0 + 6.0 * np.sin(0.9 * t + 1))
        frames.append(Camera(centre=centre, side=side, width=width, height=height).render(astronaut()))
    return np.stack(frames)

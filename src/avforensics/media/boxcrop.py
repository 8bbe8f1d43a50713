"""Crop boxes out of an image and resample them to a fixed square size, in one vectorised call per scale.

Both the MTCNN cascade (hundreds of candidate boxes per image, 24 or 48 px) and the face cropper (one
box per frame, 224 px) need the same operation: cut an arbitrary, possibly sub-pixel box that may reach
outside the image, fill the outside with black, and resize it. `grid_sample` does the cut and the resize
at once. To shrink large boxes without aliasing at a cost that does not grow with the box, each box is
sampled from a mip level (the image halved `level` times by 2x2 averaging) where it is at most twice the
output size, on a 2x finer grid that is then averaged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

_SUPERSAMPLE = 2


def crop_resize(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Resample `boxes` (n, 4) xyxy of `image` (C, H, W) float to (n, C, size, size).

    Coordinates are continuous pixel edges: pixel i spans [i, i + 1). Outside the image is zero.
    """
    channels = image.shape[0]
    boxes = boxes.to(image.dtype)
    crops = image.new_zeros((boxes.shape[0], channels, size, size))
    if boxes.shape[0] == 0:
        return crops
    longest = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values
    levels = torch.log2((longest / size).clamp(min=1.0)).floor().long()
    level_image = image[None]
    for level in range(int(levels.max()) + 1):
        if level:
            level_image = F.avg_pool2d(level_image, 2, ceil_mode=True)
        members = (levels == level).nonzero(as_tuple=True)[0]
        if len(members):
            crops[members] = _sample(level_image, boxes[members] / 2**level, size)
    return crops


def crop_resize_frame(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """`crop_resize` of one xyxy `box` of an RGB uint8 frame (H, W, 3), as uint8 (size, size, 3).

    Only the pixels the box's samples can reach (its bounds and one pixel of its mip level around them for
    the bilinear neighbours, aligned to that level's blocks so the 2x2 averages are the whole frame's) are
    converted to float, not the whole frame: a face is a small part of a video frame, and converting the
    frame cost more than sampling the crop. Where the box reaches past the frame, so does the region, and
    the outside stays black as in `crop_resize`; only float rounding of the sample positions differs.
    """
    height, width = frame.shape[:2]
    longest = float(max(box[2] - box[0], box[3] - box[1]))
    block = 2 ** math.floor(math.log2(max(longest / size, 1.0)))
    left = max(0, (math.floor(float(box[0])) - block) // block * block)
    top = max(0, (math.floor(float(box[1])) - block) // block * block)
    right = min(width, -(-(math.ceil(float(box[2])) + block) // block) * block)
    bottom = min(height, -(-(math.ceil(float(box[3])) + block) // block) * block)
    if right <= left or bottom <= top:  # the box lies wholly outside the frame: all black
        return np.zeros((size, size, 3), np.uint8)
    region = torch.from_numpy(np.ascontiguousarray(frame[top:bottom, left:right])).permute(2, 0, 1).float()
    shifted = torch.from_numpy(np.asarray(box, np.float32) - np.array([left, top, left, top], np.float32))
    crop = crop_resize(region, shifted[None], size)[0]
    return crop.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _sample(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear samples on a `_SUPERSAMPLE`x finer grid inside each box, averaged down to size x size."""
    count = boxes.shape[0]
    _, channels, height, width = image.shape
    samples = size * _SUPERSAMPLE
    steps = (torch.arange(samples, dtype=image.dtype, device=image.device) + 0.5) / samples
    xs = boxes[:, 0:1] + steps[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # (n, samples) pixel coordinates
    ys = boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    grid_x = (xs / width * 2 - 1)[:, None, :].expand(count, samples, samples)
    grid_y = (ys / height * 2 - 1)[:, :, None].expand(count, samples, samples)
    # All boxes are stacked along the grid's height so the image is never copied per box.
    grid = torch.stack([grid_x, grid_y], dim=-1).reshape(1, count * samples, samples, 2)
    # "border" keeps samples within half a pixel of the edge from blending with black; samples truly
    # outside the image are blacked out explicitly below.
    sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    crops = sampled.reshape(channels, count, samples, samples).permute(1, 0, 2, 3)
    inside_x = ((xs >= 0) & (xs < width)).to(image.dtype)
    inside_y = ((ys >= 0) & (ys < height)).to(image.dtype)
    crops = crops * (inside_y[:, None, :, None] * inside_x[:, None, None, :])
    return F.avg_pool2d(crops, _SUPERSAMPLE)

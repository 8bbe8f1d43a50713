"""Procedural talking-head sprites, shaded like faces so that a real face detector (MTCNN) finds them.

Flat cartoon faces are rarely detected; what makes the difference is shading: skin darkening toward the
contour, a side light, Gaussian eye sockets, sclera/iris/pupil with a highlight, brows, a nose with
nostrils and a shaded mouth. The static head is rendered once per clip into an RGBA sprite; per frame only
the mouth patch (from the viseme) and the eye patches (blinks) are redrawn, which keeps rendering cheap.

Coordinates: U, V are pixel offsets from the face centre divided by the face half-width `a` (so distances
are isotropic); the skin outline is (U / w(V))^2 + (V / aspect)^2 = 1, narrowing toward the chin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from avforensics.synth.identity import FaceStyle

HEAD_ROOM = 1.6  # default face centre below the sprite top, in face half-heights (room for the hair)
_SCLERA = np.array([0.93, 0.91, 0.88], dtype=np.float32)
_MOUTH_INSIDE = np.array([0.22, 0.07, 0.07], dtype=np.float32)
_TEETH = np.array([0.88, 0.85, 0.78], dtype=np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _gauss(du: np.ndarray, dv: np.ndarray, su: float, sv: float) -> np.ndarray:
    return np.exp(-0.5 * ((du / su) ** 2 + (dv / sv) ** 2))


def soft_inside(distance: np.ndarray, softness: float) -> np.ndarray:
    """Soft 0..1 coverage of a shape whose normalised distance is 1 on its outline."""
    return _smoothstep((1.0 - distance) / softness)


def _paint(image: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> None:
    image += coverage[..., None] * (colour - image)


@dataclass(frozen=True)
class FaceLayout:
    """Where the face sits inside its sprite (pixels) and how big it is."""

    centre_x: float
    centre_y: float
    half_width: float
    aspect: float

    def face_box(self) -> tuple[float, float, float, float]:
        """Skin outline bounding box (x1, y1, x2, y2) in sprite pixels: the truth for face detectors."""
        half_height = self.half_width * self.aspect
        return (
            self.centre_x - self.half_width,
            self.centre_y - half_height,
            self.centre_x + self.half_width,
            self.centre_y + half_height,
        )


class FaceSprite:
    """One identity's head, shoulders and hair as an RGBA sprite; `frame(...)` animates mouth and eyes."""

    def __init__(
        self,
        style: FaceStyle,
        half_width: float,
        height: int,
        texture_seed: int,
        centre_y: float | None = None,
    ) -> None:
        """`centre_y` pins the face centre row (to align a face-swap donor with its target)."""
        self.style = style
        a = float(half_width)
        width = int(round(4.2 * a)) // 2 * 2
        self.layout = FaceLayout(
            width / 2, centre_y if centre_y is not None else HEAD_ROOM * a * style.aspect, a, style.aspect
        )
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.u = (xs - self.layout.centre_x) / a
        self.v = (ys - self.layout.centre_y) / a
        rng = np.random.default_rng(texture_seed)
        self.rgb, self.alpha = self._static_head(rng)
        self.eye_level = style.eye_height * style.aspect
        self.mouth_level = (style.eye_height + style.nose_length + 0.27) * style.aspect
        self.mouth_box = self._box(-0.62, self.mouth_level - 0.32, 0.62, self.mouth_level + 0.36)
        self._eye_boxes = [
            self._box(
                side * style.eye_spacing - 0.2,
                self.eye_level - 0.12,
                side * style.eye_spacing + 0.2,
                self.eye_level + 0.12,
            )
            for side in (-1, 1)
        ]
        self._open_eyes = [self.rgb[box].copy() for box in self._eye_boxes]
        self._closed_eyes = [
            self._closed_eye(box, side) for box, side in zip(self._eye_boxes, (-1, 1), strict=True)
        ]
        self._bare_mouth = self.rgb[self.mouth_box].copy()

    def _box(self, u0: float, v0: float, u1: float, v1: float) -> tuple[slice, slice]:
        a, cx, cy = self.layout.half_width, self.layout.centre_x, self.layout.centre_y
        rows = slice(int(cy + v0 * a), int(np.ceil(cy + v1 * a)))
        cols = slice(int(cx + u0 * a), int(np.ceil(cx + u1 * a)))
        return rows, cols

    def skin_distance(self) -> np.ndarray:
        """Normalised distance to the skin outline per sprite pixel (1 on the outline)."""
        return self._skin_outline(self.u, self.v)

    def face_slices(self) -> tuple[slice, slice]:
        """Rows and columns of the skin outline's bounding box in the sprite."""
        x1, y1, x2, y2 = self.layout.face_box()
        return slice(max(int(y1), 0), int(np.ceil(y2))), slice(max(int(x1), 0), int(np.ceil(x2)))

    # -- static head
    def _skin_outline(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = self.style
        narrowing = 1.0 - s.chin * np.clip(v / s.aspect, 0.0, 1.0) ** 2
        return np.sqrt((u / narrowing) ** 2 + (v / s.aspect) ** 2)

    def _skin_shading(self, u: np.ndarray, v: np.ndarray, distance: np.ndarray) -> np.ndarray:
        s = self.style
        skin = np.asarray(s.skin, dtype=np.float32)
        shade = (1.0 - 0.5 * np.clip(distance, 0, 1.2) ** 4) * (1.0 + 0.16 * s.light_side * u)
        shade += 0.07 * _gauss(u - 0.3 * s.light_side, v + 0.55 * s.aspect, 0.35, 0.2)  # forehead highlight
        image = skin * shade[..., None]
        blush = 0.05 * (
            _gauss(u - 0.55, v - 0.2 * s.aspect, 0.18, 0.14)
            + _gauss(u + 0.55, v - 0.2 * s.aspect, 0.18, 0.14)
        )
        image[..., 0] += blush
        image[..., 1:] -= 0.5 * blush[..., None]
        return image

    def _static_head(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s, u, v = self.style, self.u, self.v
        image = np.zeros(u.shape + (3,), dtype=np.float32)
        alpha = np.zeros(u.shape, dtype=np.float32)
        shirt = np.asarray(s.shirt, dtype=np.float32)
        # shoulders and neck
        shoulders = soft_inside(
            np.sqrt((u / 1.95) ** 2 + ((v - 2.55 * s.aspect) / (1.25 * s.aspect)) ** 2), 0.03
        )
        _paint(image, shoulders, shirt * (1.0 - 0.25 * np.clip(np.abs(u) / 2, 0, 1))[..., None])
        alpha = np.maximum(alpha, shoulders)
        neck = soft_inside(np.maximum(np.abs(u) / 0.5, np.abs(v - 1.25 * s.aspect) / (0.75 * s.aspect)), 0.08)
        neck_colour = np.asarray(s.skin, dtype=np.float32) * (0.72 + 0.1 * (1 - np.abs(u)))[..., None]
        _paint(image, neck, neck_colour)
        alpha = np.maximum(alpha, neck)
        # hair behind the head and ears
        hair = np.asarray(s.hair, dtype=np.float32)
        hair_shape = soft_inside(
            np.sqrt(
                (u / (1.12 + s.hair_volume)) ** 2
                + ((v + 0.22 * s.aspect) / ((1.0 + 0.5 * s.hair_volume) * s.aspect)) ** 2
            ),
            0.05,
        ) * (v < 0.35 * s.aspect)
        hair_texture = 1.0 + 0.08 * ndimage.gaussian_filter(rng.standard_normal(u.shape), (2.0, 0.6))
        _paint(image, hair_shape.astype(np.float32), hair * hair_texture[..., None])
        alpha = np.maximum(alpha, hair_shape)
        for side in (-1, 1):
            ear = soft_inside(np.sqrt(((u - side * 0.98) / 0.13) ** 2 + ((v - 0.02) / 0.24) ** 2), 0.2)
            _paint(image, ear, np.asarray(s.skin, dtype=np.float32) * 0.78)
            alpha = np.maximum(alpha, ear)
        # the face
        distance = self._skin_outline(u, v)
        face = soft_inside(distance, 0.05)
        skin_texture = 1.0 + 0.025 * ndimage.gaussian_filter(rng.standard_normal(u.shape), 0.7)
        _paint(image, face, self._skin_shading(u, v, distance) * skin_texture[..., None])
        alpha = np.maximum(alpha, face)
        fringe = face * _smoothstep((-(v / s.aspect) - 0.62 - 0.06 * np.cos(7 * u)) / 0.08)
        _paint(image, fringe, hair * 0.9)
        self._eyes_and_brows(image, u, v)
        self._nose(image, u, v)
        return image, alpha

    def _eyes_and_brows(self, image: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        s = self.style
        eye_v = s.eye_height * s.aspect
        iris = np.asarray(s.iris, dtype=np.float32)
        for side in (-1, 1):
            eye_u = side * s.eye_spacing
            du, dv = u - eye_u, v - eye_v
            image *= 1.0 - 0.28 * _gauss(du, dv + 0.02, 0.21, 0.12)[..., None]  # socket
            sclera = soft_inside(
                np.sqrt((du / (0.15 * s.eye_size)) ** 2 + (dv / (0.065 * s.eye_size)) ** 2), 0.25
            )
            _paint(image, sclera, _SCLERA * (1.0 - 0.15 * np.clip(np.abs(du) / 0.15, 0, 1))[..., None])
            iris_disc = soft_inside(np.sqrt(du**2 + dv**2) / (0.068 * s.eye_size), 0.25) * sclera
            _paint(
                image,
                iris_disc,
                iris * (0.75 + 0.25 * np.clip(np.sqrt(du**2 + dv**2) / 0.07, 0, 1))[..., None],
            )
            pupil = soft_inside(np.sqrt(du**2 + dv**2) / (0.03 * s.eye_size), 0.3) * sclera
            _paint(image, pupil, np.array([0.03, 0.03, 0.03], dtype=np.float32))
            glint = soft_inside(np.sqrt((du + 0.02) ** 2 + (dv + 0.02) ** 2) / 0.014, 0.5)
            _paint(image, glint, np.array([1.0, 1.0, 1.0], dtype=np.float32))
            lid_line = np.exp(
                -0.5 * ((dv + 0.06 * s.eye_size * np.sqrt(np.clip(1 - (du / 0.16) ** 2, 0, 1))) / 0.012) ** 2
            )
            lid_line *= np.abs(du) < 0.17
            _paint(image, 0.7 * lid_line, np.asarray(s.hair, dtype=np.float32) * 0.4)
            brow_centre = eye_v - 0.17 - 0.05 * np.clip(1 - (du / 0.22) ** 2, 0, 1)
            brow = np.exp(-0.5 * ((v - brow_centre) / s.brow_thickness) ** 2) * _smoothstep(
                (0.24 - np.abs(du)) / 0.06
            )
            _paint(image, 0.85 * brow, np.asarray(s.hair, dtype=np.float32) * 0.8)

    def _nose(self, image: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        s = self.style
        top, tip = s.eye_height * s.aspect, (s.eye_height + s.nose_length) * s.aspect
        along = np.clip((v - top) / (tip - top), 0, 1) * (v > top - 0.05)
        shadow_side = -np.sign(s.light_side) if s.light_side else 1.0
        image *= (
            1.0
            - (0.16 * _gauss(u - shadow_side * 0.09, 0.0, 0.04, 1.0) * along * (v < tip + 0.05))[..., None]
        )
        image *= 1.0 + (0.10 * _gauss(u, 0.0, 0.035, 1.0) * along * (v < tip))[..., None]
        image *= 1.0 + 0.10 * _gauss(u, v - tip, 0.07, 0.05)[..., None]
        for side in (-1, 1):
            image *= 1.0 - 0.6 * _gauss(u - side * 0.085, v - tip - 0.05, 0.035, 0.02)[..., None]
            image *= 1.0 - 0.15 * _gauss(u - side * 0.13, v - tip, 0.03, 0.06)[..., None]

    # -- animated parts
    def _closed_eye(self, box: tuple[slice, slice], side: int) -> np.ndarray:
        """The eye region with the lid down: shaded skin and a lash line."""
        s = self.style
        u, v = self.u[box], self.v[box]
        distance = self._skin_outline(u, v)
        du, dv = u - side * s.eye_spacing, v - self.eye_level
        lid = self._skin_shading(u, v, distance) * (1.0 - 0.22 * _gauss(du, dv + 0.02, 0.21, 0.12))[..., None]
        lash = np.exp(-0.5 * ((dv - 0.01) / 0.012) ** 2) * (np.abs(du) < 0.15)
        _paint(lid, 0.8 * lash, np.asarray(s.hair, dtype=np.float32) * 0.4)
        open_eye = self.rgb[box]
        cover = soft_inside(np.sqrt((du / 0.19) ** 2 + (dv / 0.09) ** 2), 0.4)
        return open_eye + cover[..., None] * (lid - open_eye)

    def mouth_patch(self, mouth_open: float, mouth_width: float) -> np.ndarray:
        """The mouth region for a viseme (opening and width in 0..1), on this face's skin."""
        s = self.style
        patch = self._bare_mouth.copy()
        u, v = self.u[self.mouth_box], self.v[self.mouth_box] - self.mouth_level
        half_width = s.mouth_width * (0.8 + 0.45 * mouth_width) * (1.0 - 0.15 * mouth_open)
        opening = 0.012 + 0.16 * mouth_open
        lips = np.asarray(s.lips, dtype=np.float32)
        shade_below = 1.0 - 0.18 * _gauss(u, v - opening - 0.13, 0.22, 0.04)
        patch *= shade_below[..., None]
        outer = soft_inside(np.sqrt((u / (half_width * 1.08)) ** 2 + (v / (opening + 0.075)) ** 2), 0.25)
        lip_shade = 1.0 + 0.18 * np.clip(v / 0.1, -1, 1) * (v > 0) - 0.1 * (v < 0)
        _paint(patch, outer, lips * lip_shade[..., None])
        inner = soft_inside(np.sqrt((u / half_width) ** 2 + (v / opening) ** 2), 0.3)
        _paint(patch, inner, _MOUTH_INSIDE * (0.6 + 0.4 * _gauss(u, v, 0.4, 0.2))[..., None])
        teeth = (
            inner
            * _smoothstep((-(v + opening * 0.45)) / (0.02 + 0.1 * opening))
            * np.clip(mouth_open * 2.5 - 0.4, 0, 1)
        )
        _paint(patch, teeth, _TEETH)
        return patch

    def frame(self, mouth_open: float, mouth_width: float, blink: float) -> np.ndarray:
        """The sprite's RGB for one frame (alpha is `self.alpha`, unchanged by animation)."""
        image = self.rgb.copy()
        image[self.mouth_box] = self.mouth_patch(mouth_open, mouth_width)
        if blink > 0.0:
            for box, open_eye, closed_eye in zip(
                self._eye_boxes, self._open_eyes, self._closed_eyes, strict=True
            ):
                rows = open_eye.shape[0]
                lid = (np.arange(rows) < blink * rows).astype(np.float32)[:, None, None]
                image[box] = open_eye + lid * (closed_eye - open_eye)
        return image

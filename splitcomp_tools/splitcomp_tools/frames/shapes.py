"""Synthetic labelled images of shapes and textures.

No pretrained weights or datasets can be downloaded where this project is built and tested, so
the demo model is trained on images made here. The same generator feeds calibration and the
`image_source` node's generated camera frames, so every random choice (colour, pose, scale,
clutter, lighting, noise) is drawn from one seeded generator: a seed fully determines the images.

The class object always lies inside the frame's central square, so a frame of any aspect ratio
(e.g. 640x480) still shows it after a centre crop to a square model input.
"""

from collections.abc import Sequence

import cv2
import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "crescent",
    "horizontal_stripes",
    "vertical_stripes",
    "diagonal_stripes",
    "checkerboard",
    "polka_dots",
)

_SHAPES = frozenset(CLASS_NAMES[:7])  # filled outlines; the rest are periodic textures
MIN_SIDE = 32
_SHIFT = 4  # cv2 fixed-point fractional bits: sub-pixel vertex positions
_ONE = 1 << _SHIFT
_STRIPE_NORMAL_DEG = {"horizontal_stripes": 90.0, "vertical_stripes": 0.0}
_ORIENTATION_JITTER_DEG = 15.0  # stripe classes stay apart: 15 degrees between neighbouring ranges
_INT8_UNIFORM_STD = float(np.sqrt((256**2 - 1) / 12.0))  # std of uniform int8 noise

Size = int | tuple[int, int]


def _parse_size(size: Size) -> tuple[int, int]:
    """Return (width, height) from an int (square) or a (width, height) pair."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        width = height = int(size)
    elif (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    ):
        width, height = int(size[0]), int(size[1])
    else:
        raise ValueError(f"size must be an int or a (width, height) pair of ints, got {size!r}")
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"size {width}x{height} is too small: width and height must be >= {MIN_SIDE}")
    return width, height


def _regular_polygon(n: int, phase: float) -> np.ndarray:
    """Unit-radius vertices of a regular n-gon, shape (n, 2)."""
    angles = phase + 2.0 * np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _crescent(shift: float, bite: float) -> np.ndarray:
    """Unit disk minus a disk of radius `bite` centred at (shift, 0), as one polygon.

    Needs shift + bite > 1 (the bite cuts through the rim) and bite < 1 + shift (a horn remains).
    """
    x = (1.0 + shift * shift - bite * bite) / (2.0 * shift)
    y = np.sqrt(1.0 - x * x)
    outer_start = np.arctan2(y, x)
    inner_start = np.arctan2(y, x - shift)
    outer = np.linspace(outer_start, 2.0 * np.pi - outer_start, 40)
    inner = np.linspace(2.0 * np.pi - inner_start, inner_start, 30)
    return np.concatenate(
        [
            np.stack([np.cos(outer), np.sin(outer)], axis=1),
            np.stack([shift + bite * np.cos(inner), bite * np.sin(inner)], axis=1),
        ]
    )


def _rgb(values: np.ndarray) -> tuple[int, int, int]:
    """The three values of a colour array as plain ints."""
    r, g, b = (int(v) for v in values)
    return r, g, b


class ShapeGenerator:
    """Seeded source of labelled RGB images (uint8, HxWx3) of the classes in CLASS_NAMES."""

    def __init__(self, seed: int, size: Size = 128) -> None:
        self.width, self.height = _parse_size(size)
        self._rng = np.random.default_rng(seed)
        self._side = float(min(self.width, self.height))
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        self._xs = xs + 0.5
        self._ys = ys + 0.5
        self._centre = np.array([self.width / 2.0, self.height / 2.0])

    def sample(self, label: int | None = None) -> tuple[np.ndarray, int]:
        """One image and its label; a random class when `label` is None."""
        if label is None:
            label = int(self._rng.integers(len(CLASS_NAMES)))
        elif isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < len(CLASS_NAMES):
            raise ValueError(
                f"label must be an int in 0..{len(CLASS_NAMES) - 1} (an index into CLASS_NAMES), got {label!r}"
            )
        return self._render(int(label)), int(label)

    def batch(self, n: int, labels: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n images (N x H x W x 3 uint8) and labels (int64).

        Without `labels` the classes are balanced (counts differ by at most one) and shuffled,
        which is what training and calibration want.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if labels is None:
            chosen = self._rng.permutation(np.resize(np.arange(len(CLASS_NAMES)), n))
        else:
            chosen = np.asarray(labels)
            if chosen.shape != (n,):
                raise ValueError(f"labels must hold exactly n={n} class indices, got shape {chosen.shape}")
        images = np.empty((n, self.height, self.width, 3), dtype=np.uint8)
        out_labels = np.empty(n, dtype=np.int64)
        for i, label in enumerate(chosen.tolist()):
            images[i], out_labels[i] = self.sample(label)
        return images, out_labels

    # -- scene -------------------------------------------------------------------------------

    def _render(self, label: int) -> np.ndarray:
        bg, fg = self._colours()
        canvas = cv2.merge([np.full((self.height, self.width), c, dtype=np.uint8) for c in bg])
        self._draw_blobs(canvas)
        name = CLASS_NAMES[label]
        if name in _SHAPES:
            self._draw_shape(canvas, name, fg)
            self._draw_lines(canvas)
            return self._camera(canvas)
        pixels = canvas.astype(np.float32)
        mask = self._texture_mask(name)[..., None]
        pixels += (np.asarray(fg, dtype=np.float32) - pixels) * mask
        self._draw_lines(pixels)
        return self._camera(pixels)

    def _colours(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """Background and foreground: the most distinct of a few random candidates stays visible."""
        bg = self._rng.integers(0, 256, size=3)
        candidates = self._rng.integers(0, 256, size=(6, 3))
        fg = candidates[np.argmax(np.abs(candidates - bg).sum(axis=1))]
        return _rgb(bg), _rgb(fg)

    def _random_colour(self) -> tuple[int, int, int]:
        return _rgb(self._rng.integers(0, 256, size=3))

    def _fixed(self, points: np.ndarray) -> np.ndarray:
        return np.round(points * _ONE).astype(np.int32)

    # -- clutter: things that are not class shapes -------------------------------------------

    def _draw_blobs(self, canvas: np.ndarray) -> None:
        """Small irregular blobs behind the object."""
        rng = self._rng
        for _ in range(int(rng.integers(0, 4))):
            n = int(rng.integers(7, 11))
            radii = rng.uniform(0.45, 1.0, size=n) * rng.uniform(0.04, 0.09) * self._side
            angles = np.sort(rng.uniform(0.0, 2.0 * np.pi, size=n))
            centre = rng.uniform([0.0, 0.0], [self.width, self.height])
            points = centre + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            cv2.fillPoly(canvas, [self._fixed(points)], self._random_colour(), cv2.LINE_AA, _SHIFT)

    def _draw_lines(self, canvas: np.ndarray) -> None:
        """A few thin straight lines across the scene, drawn over the object."""
        rng = self._rng
        thickness_max = max(2, round(2 * self._side / 128))
        for _ in range(int(rng.integers(0, 4))):
            ends = rng.uniform([0.0, 0.0], [self.width, self.height], size=(2, 2))
            start, end = self._fixed(ends)
            cv2.line(
                canvas,
                tuple(int(v) for v in start),
                tuple(int(v) for v in end),
                self._random_colour(),
                int(rng.integers(1, thickness_max + 1)),
                cv2.LINE_AA,
                _SHIFT,
            )

    # -- class objects -----------------------------------------------------------------------

    def _pose(self, scale_lo: float, scale_hi: float) -> tuple[np.ndarray, float, float]:
        """Centre (inside the central square), radius in pixels, rotation in radians."""
        rng = self._rng
        radius = rng.uniform(scale_lo, scale_hi) * self._side / 2.0
        slack = self._side / 2.0 - radius
        centre = self._centre + rng.uniform(-slack, slack, size=2)
        return centre, radius, float(rng.uniform(0.0, 2.0 * np.pi))

    def _draw_shape(self, canvas: np.ndarray, name: str, colour: tuple[int, int, int]) -> None:
        """A filled class outline at a random pose, anti-aliased with sub-pixel vertices."""
        rng = self._rng
        centre, radius, angle = self._pose(0.4, 0.85)
        if name in ("circle", "ring"):
            thickness = -1 if name == "circle" else max(2, round(radius * rng.uniform(0.25, 0.45)))
            outer = radius if name == "circle" else radius - thickness / 2.0
            cv2.circle(
                canvas,
                tuple(int(v) for v in self._fixed(centre)),
                round(outer * _ONE),
                colour,
                thickness,
                cv2.LINE_AA,
                _SHIFT,
            )
            return
        unit = self._unit_outline(name)
        cos, sin = np.cos(angle), np.sin(angle)
        points = centre + radius * unit @ np.array([[cos, sin], [-sin, cos]])
        cv2.fillPoly(canvas, [self._fixed(points)], colour, cv2.LINE_AA, _SHIFT)

    def _unit_outline(self, name: str) -> np.ndarray:
        """Vertices of a class outline that fits in the unit circle, before rotation."""
        rng = self._rng
        if name == "square":
            return _regular_polygon(4, np.pi / 4)
        if name == "triangle":
            return _regular_polygon(3, -np.pi / 2)
        if name == "crescent":
            return _crescent(rng.uniform(0.35, 0.55), rng.uniform(0.75, 0.9))
        if name == "star":
            ratio = rng.uniform(0.38, 0.5)
            return _regular_polygon(10, -np.pi / 2) * np.tile([1.0, ratio], 5)[:, None]
        arm = rng.uniform(0.22, 0.34)  # half-width of the cross's arms
        return np.array(
            [
                [arm, 1],
                [-arm, 1],
                [-arm, arm],
                [-1, arm],
                [-1, -arm],
                [-arm, -arm],
                [-arm, -1],
                [arm, -1],
                [arm, -arm],
                [1, -arm],
                [1, arm],
                [arm, arm],
            ]
        ) / np.hypot(1.0, arm)

    def _texture_mask(self, name: str) -> np.ndarray:
        """Anti-aliased coverage (0..1, HxW float32) of a periodic pattern inside a random region."""
        rng = self._rng
        period = rng.uniform(0.08, 0.16) * self._side
        angle = self._texture_angle(name)
        cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        phase = rng.uniform(0.0, period, size=2).astype(np.float32)
        u = self._xs * cos + self._ys * sin + phase[0]
        if name.endswith("_stripes"):
            duty = rng.uniform(0.35, 0.65)
            # Signed distance (pixels) to the nearest stripe edge, from the cosine of the phase.
            wave = np.cos(np.float32(2.0 * np.pi / period) * u) - np.float32(np.cos(np.pi * duty))
            mask = wave * np.float32(period / (2.0 * np.pi * np.sin(np.pi * duty))) + np.float32(0.5)
        else:
            v = self._ys * cos - self._xs * sin + phase[1]
            if name == "checkerboard":
                k = np.float32(period / np.pi)
                fu = np.clip(np.sin(np.float32(np.pi / period) * u) * k, -0.5, 0.5)
                fv = np.clip(np.sin(np.float32(np.pi / period) * v) * k, -0.5, 0.5)
                mask = np.float32(0.5) + 2.0 * fu * fv
            else:
                du = np.mod(u, np.float32(period)) - np.float32(period / 2.0)
                dv = np.mod(v, np.float32(period)) - np.float32(period / 2.0)
                dot_radius = np.float32(period * rng.uniform(0.22, 0.33))
                mask = dot_radius + np.float32(0.5) - np.sqrt(du * du + dv * dv)
        np.clip(mask, 0.0, 1.0, out=mask)
        mask *= self._region_mask()
        return mask

    def _texture_angle(self, name: str) -> float:
        jitter = self._rng.uniform(-_ORIENTATION_JITTER_DEG, _ORIENTATION_JITTER_DEG)
        if name in _STRIPE_NORMAL_DEG:
            return float(np.deg2rad(_STRIPE_NORMAL_DEG[name] + jitter))
        if name == "diagonal_stripes":
            return float(np.deg2rad(self._rng.choice([45.0, 135.0]) + jitter))
        return float(self._rng.uniform(0.0, np.pi))

    def _region_mask(self) -> np.ndarray:
        """The whole frame, or an axis-aligned rectangle covering much of the central square."""
        rng = self._rng
        if rng.random() < 0.3:
            return np.ones((self.height, self.width), dtype=np.float32)
        half = rng.uniform(0.3, 0.5, size=2) * self._side
        centre = self._centre + rng.uniform(-1.0, 1.0, size=2) * (self._side / 2.0 - half)
        lo = np.round(centre - half).astype(int)
        hi = np.round(centre + half).astype(int)
        region = np.zeros((self.height, self.width), dtype=np.float32)
        region[max(lo[1], 0) : hi[1], max(lo[0], 0) : hi[0]] = 1.0
        return region

    # -- camera: lighting, blur, noise --------------------------------------------------------

    def _camera(self, canvas: np.ndarray) -> np.ndarray:
        """Brightness, contrast, colour cast, a lighting gradient, optional blur and sensor noise."""
        rng = self._rng
        if rng.random() < 0.3:
            canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 1.2))
        gain = (rng.uniform(0.55, 1.3) * rng.uniform(0.85, 1.15, size=3)).astype(np.float32)
        direction = rng.normal(size=2)
        direction *= rng.uniform(0.0, 70.0) / (np.linalg.norm(direction) * self._side)
        light = (self._xs - np.float32(self._centre[0])) * np.float32(direction[0]) + (
            self._ys - np.float32(self._centre[1])
        ) * np.float32(direction[1])
        # Contrast about mid-grey plus a brightness shift, folded into one per-channel offset.
        offset = np.float32(128.0) * (1 - gain) + np.float32(rng.uniform(-50.0, 50.0))
        # Uniform int8 noise scaled to std `sigma`: ten times cheaper than Gaussian draws.
        sigma = rng.uniform(0.0, 14.0)
        noise = rng.integers(-128, 128, size=canvas.shape, dtype=np.int8)
        out = noise * np.float32(sigma / _INT8_UNIFORM_STD)
        out += canvas * gain
        out += light[..., None] + offset
        np.clip(out, 0.0, 255.0, out=out)
        return out.astype(np.uint8)

"""Frames like consecutive video frames, for the inter-frame coding tests (no video file needed)."""

import numpy as np


def video_frames(count: int, seed: int = 0, size: tuple[int, int] = (24, 32)):
    """Frames of a slowly drifting scene (each a small change of the one before), like consecutive video frames."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 256, (*size, 3)).astype(np.int16)
    frames = []
    for _ in range(count):
        scene = np.clip(scene + rng.integers(-6, 7, scene.shape), 0, 255)
        frames.append(scene.astype(np.uint8))
    return frames

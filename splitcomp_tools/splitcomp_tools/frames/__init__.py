"""Frame sources (no ROS): generated shapes, photos from installed wheels, image folders, videos, cameras, rosbag2."""

from splitcomp_tools.frames.base import FrameSource
from splitcomp_tools.frames.registry import open_source

__all__ = ["FrameSource", "open_source"]

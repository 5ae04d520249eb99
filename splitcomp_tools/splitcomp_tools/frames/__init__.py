"""Frame sources (no ROS): generated frames, image folders, videos, cameras and rosbag2 recordings."""

from splitcomp_tools.frames.base import FrameSource
from splitcomp_tools.frames.registry import open_source

__all__ = ["FrameSource", "open_source"]

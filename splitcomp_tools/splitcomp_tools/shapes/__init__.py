"""The toy model (no ROS): its network and its training on generated shapes (frames/shapes.py)."""

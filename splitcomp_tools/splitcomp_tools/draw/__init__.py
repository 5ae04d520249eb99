"""Drawing on camera frames with numpy and OpenCV only: no ROS, so the overlay node, the demo and the studio share it."""

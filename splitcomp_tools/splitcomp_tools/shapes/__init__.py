"""The demo model (no ROS): its shape generator, network, training and the demo bundle."""

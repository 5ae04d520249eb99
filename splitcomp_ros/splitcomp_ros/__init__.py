"""ROS adapters shared by the splitcomp nodes: messages, images, QoS and diagnostics to and from the core."""

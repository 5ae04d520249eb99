"""splitcomp_tools: the offline tools and helper nodes, in rooms by what they need.

- `model/`: ONNX graphs, cuts, export, split, calibrate, classify (no ROS);
- `frames/`: every frame source (no ROS; rosbag2 files are read with the pure-Python rosbags);
- `shapes/`: the demo model, its generator, training and demo bundle (no ROS);
- `nodes/`: the image_source and overlay nodes (rclpy);
- `run/`: the demo, the benchmarks and nodes started as processes (rclpy).

The modules at this level only make `python -m splitcomp_tools.<tool>` start each tool.
"""

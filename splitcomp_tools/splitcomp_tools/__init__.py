"""splitcomp_tools: the offline tools and helper nodes, in rooms by what they need, each importing only
its own room or the rooms below it (tests/test_architecture.py holds the order):

- `cli.py`: the one command-line layer (ToolParser, run_cli, check_outputs, format_table);
- `draw/`: drawing on frames with numpy and OpenCV (no ROS);
- `frames/`: every frame source, the shape generator among them (no ROS; rosbag2 files are read with rosbags);
- `model/`: ONNX graphs, cuts, export, split, calibrate, plan, classify (no ROS);
- `report/`: library results formatted for people;
- `shapes/`: the toy model and its training (no ROS);
- `nodes/`: the image_source and overlay nodes (rclpy);
- `run/`: the benchmarks, the pipeline runner, the test bed and the ros verbs (rclpy);
- `demo/`: the demo: its models, their preparation, the run and its summary;
- `studio/`: the web app.

The modules at this level are the commands (`ros2 run splitcomp_tools <tool>`, `python -m splitcomp_tools.<tool>`).
"""

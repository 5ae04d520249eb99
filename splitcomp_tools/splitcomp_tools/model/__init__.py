"""Model tools (no ROS): ONNX graph analysis, cuts, export, split, calibration and classification."""

"""Whole-product runs (rclpy): the benchmarks, the pipeline runner, nodes started as processes, the test bed."""

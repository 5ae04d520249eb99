"""Whole-product runs (rclpy): the demo, the benchmarks, and nodes started as processes."""

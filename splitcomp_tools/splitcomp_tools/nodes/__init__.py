"""Helper nodes (rclpy): image_source and overlay, and the drawing the overlay does (annotate, no ROS)."""

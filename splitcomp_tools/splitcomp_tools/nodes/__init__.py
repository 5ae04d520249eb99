"""Helper nodes (rclpy): image_source and overlay; the overlay draws with draw/annotate.py."""

"""The studio (no ROS but its Live view): a web page and JSON API over the offline tools, served by FastAPI.

Upload or pick a model, see its cuts, split, calibrate, test images and download the bundle, all
through the same functions as the command-line tools (`adapter` is the one module that calls them);
`live` (rclpy, only with --ros) streams a running pipeline's diagnostics and results to the page.
"""

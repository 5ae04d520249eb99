#!/usr/bin/env bash
# Entry point of the robot and edge images: puts ROS 2 and the splitcomp workspace on the paths,
# then runs the container's command (by default a `ros2 launch`), so `docker run IMAGE ros2 ...`
# works with any ros2 command too. The `--` keeps the setup scripts from reading our arguments.
set -e
# shellcheck disable=SC1090
source "/opt/ros/${ROS_DISTRO:?ROS_DISTRO is not set in the image}/setup.bash" --
# shellcheck disable=SC1091
source /opt/splitcomp/install/setup.bash --
exec "$@"

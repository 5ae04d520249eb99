"""Edge side: the tail node.

ros2 launch splitcomp_tools edge.launch.py bundle:=/path/to/bundle [namespace:=robot1]
    [tail_config:=/path/to/tail.yaml]
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

from launch import LaunchDescription


def generate_launch_description():
    config_dir = os.path.join(get_package_share_directory("splitcomp_tools"), "config")
    return LaunchDescription(
        [
            DeclareLaunchArgument("bundle", description="Path of the split bundle directory"),
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of every node and topic"),
            DeclareLaunchArgument(
                "tail_config",
                default_value=os.path.join(config_dir, "tail.yaml"),
                description="Parameter file of tail_node",
            ),
            GroupAction(
                [
                    PushRosNamespace(LaunchConfiguration("namespace")),
                    Node(
                        package="splitcomp_tail_node",
                        executable="tail_node",
                        name="tail_node",
                        output="screen",
                        parameters=[LaunchConfiguration("tail_config"), {"bundle": LaunchConfiguration("bundle")}],
                    ),
                ]
            ),
        ]
    )

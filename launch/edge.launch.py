"""Edge side: the tail node.

ros2 launch splitcomp_tools edge.launch.py bundle:=/path/to/bundle [namespace:=robot1]
    [tail_config:=/path/to/tail.yaml] [dds_profile:=auto]

dds_profile: the Fast DDS profile of the nodes (splitcomp_ros.dds_profile): by default the installed
config/fastdds.xml, unless FASTRTPS_/FASTDDS_DEFAULT_PROFILES_FILE is already exported (then that one is kept).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

from launch import LaunchDescription
from splitcomp_ros.dds_profile import ARGUMENT_DESCRIPTION, apply_in_launch


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
            DeclareLaunchArgument("dds_profile", default_value="auto", description=ARGUMENT_DESCRIPTION),
            OpaqueFunction(function=apply_in_launch),  # the nodes below get config/fastdds.xml unless one is exported
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

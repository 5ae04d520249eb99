"""Everything on one host: robot.launch.py (with image_source) and edge.launch.py, the overlay, optionally rviz2.

    ros2 launch splitcomp_tools pipeline.launch.py bundle:=/path/to/bundle [rviz:=true]
        [source:=generator] [namespace:=demo] [head_config:=...] [tail_config:=...]

bundle, namespace, source, head_config and tail_config are the included files' own arguments.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("splitcomp_tools")
    config_dir = os.path.join(share, "config")

    def include(name, **arguments):
        source = PythonLaunchDescriptionSource(os.path.join(share, "launch", name))
        return IncludeLaunchDescription(source, launch_arguments=arguments.items())

    return LaunchDescription(
        [
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of every node and topic"),
            DeclareLaunchArgument("rviz", default_value="false", description="Start rviz2 with config/splitcomp.rviz"),
            include("robot.launch.py", image_source="true"),
            include("edge.launch.py"),
            GroupAction(
                [
                    PushRosNamespace(LaunchConfiguration("namespace")),
                    Node(package="splitcomp_tools", executable="overlay", name="overlay", output="screen"),
                    Node(
                        package="rviz2",
                        executable="rviz2",
                        name="rviz2",
                        arguments=["-d", os.path.join(config_dir, "splitcomp.rviz")],
                        condition=IfCondition(LaunchConfiguration("rviz")),
                    ),
                ]
            ),
        ]
    )

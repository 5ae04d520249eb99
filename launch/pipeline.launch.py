"""Everything on one host: image_source, head, tail, overlay, and optionally rviz2.

    ros2 launch splitcomp_tools pipeline.launch.py bundle:=/path/to/bundle [rviz:=true]
        [source:=generator] [namespace:=demo] [head_config:=...] [tail_config:=...]
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace


def generate_launch_description():
    config_dir = os.path.join(get_package_share_directory("splitcomp_tools"), "config")
    bundle = LaunchConfiguration("bundle")
    return LaunchDescription([
        DeclareLaunchArgument("bundle", description="Path of the split bundle directory"),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of every node and topic"),
        DeclareLaunchArgument("head_config", default_value=os.path.join(config_dir, "head.yaml"),
                              description="Parameter file of head_node"),
        DeclareLaunchArgument("tail_config", default_value=os.path.join(config_dir, "tail.yaml"),
                              description="Parameter file of tail_node"),
        DeclareLaunchArgument("source", default_value="generator",
                              description="image_source input: generator, a folder, a video file or a device"),
        DeclareLaunchArgument("rviz", default_value="false", description="Start rviz2 with config/splitcomp.rviz"),
        GroupAction([
            PushRosNamespace(LaunchConfiguration("namespace")),
            Node(package="splitcomp_tools", executable="image_source", name="image_source", output="screen",
                 parameters=[{"source": LaunchConfiguration("source")}]),
            Node(package="splitcomp_head_node", executable="head_node", name="head_node", output="screen",
                 parameters=[LaunchConfiguration("head_config"), {"bundle": bundle}]),
            Node(package="splitcomp_tail_node", executable="tail_node", name="tail_node", output="screen",
                 parameters=[LaunchConfiguration("tail_config"), {"bundle": bundle}]),
            Node(package="splitcomp_tools", executable="overlay", name="overlay", output="screen"),
            Node(package="rviz2", executable="rviz2", name="rviz2",
                 arguments=["-d", os.path.join(config_dir, "splitcomp.rviz")],
                 condition=IfCondition(LaunchConfiguration("rviz"))),
        ]),
    ])

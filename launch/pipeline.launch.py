"""Everything on one host: robot.launch.py (with image_source) and edge.launch.py, the overlay, optionally rviz2.

    ros2 launch splitcomp_tools pipeline.launch.py bundle:=/path/to/bundle [rviz:=true]
        [source:=generator] [namespace:=demo] [head_config:=...] [tail_config:=...] [camera_topic:=...]
        [dds_profile:=auto]

An include must pass every argument the included file requires (one without a default): `ros2 launch`
checks each include against the names given to it, not against what this file received. So `bundle`
is declared here and handed to both includes. namespace, source, head_config, tail_config,
camera_topic and dds_profile have defaults there; a value given here reaches them as a launch configuration.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

from launch import LaunchDescription
from splitcomp_ros.dds_profile import ARGUMENT_DESCRIPTION, apply_in_launch


def generate_launch_description():
    share = get_package_share_directory("splitcomp_tools")
    config_dir = os.path.join(share, "config")
    bundle = LaunchConfiguration("bundle")

    def include(name, **arguments):
        source = PythonLaunchDescriptionSource(os.path.join(share, "launch", name))
        return IncludeLaunchDescription(source, launch_arguments=arguments.items())

    return LaunchDescription(
        [
            DeclareLaunchArgument("bundle", description="Path of the split bundle directory"),
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of every node and topic"),
            DeclareLaunchArgument("rviz", default_value="false", description="Start rviz2 with config/splitcomp.rviz"),
            DeclareLaunchArgument(
                "camera_topic", default_value="image_raw", description="Camera topic of the head and the overlay"
            ),
            DeclareLaunchArgument("dds_profile", default_value="auto", description=ARGUMENT_DESCRIPTION),
            OpaqueFunction(function=apply_in_launch),  # the nodes below get config/fastdds.xml unless one is exported
            include("robot.launch.py", bundle=bundle, image_source="true"),
            include("edge.launch.py", bundle=bundle),
            GroupAction(
                [
                    PushRosNamespace(LaunchConfiguration("namespace")),
                    Node(
                        package="splitcomp_tools",
                        executable="overlay",
                        name="overlay",
                        output="screen",
                        remappings=[("image_raw", LaunchConfiguration("camera_topic"))],
                    ),
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

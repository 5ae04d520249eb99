"""Robot side: the head node, and optionally an image_source standing in for a camera.

ros2 launch splitcomp_tools robot.launch.py bundle:=/path/to/bundle [namespace:=robot1]
    [head_config:=/path/to/head.yaml] [image_source:=true] [source:=generator]
    [camera_topic:=/camera/color/image_raw] [dds_profile:=auto]

dds_profile: the Fast DDS profile of the nodes (splitcomp_ros.dds_profile): by default the installed
config/fastdds.xml, unless FASTRTPS_/FASTDDS_DEFAULT_PROFILES_FILE is already exported (then that one is kept).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

from launch import LaunchDescription
from splitcomp_ros.dds_profile import ARGUMENT_DESCRIPTION, apply_in_launch


def generate_launch_description():
    config_dir = os.path.join(get_package_share_directory("splitcomp_tools"), "config")
    bundle = LaunchConfiguration("bundle")
    camera = LaunchConfiguration("camera_topic")
    camera_remaps = [("image_raw", camera), ("image_raw/compressed", [camera, "/compressed"])]
    return LaunchDescription(
        [
            DeclareLaunchArgument("bundle", description="Path of the split bundle directory"),
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of every node and topic"),
            DeclareLaunchArgument(
                "head_config",
                default_value=os.path.join(config_dir, "head.yaml"),
                description="Parameter file of head_node",
            ),
            DeclareLaunchArgument(
                "image_source", default_value="false", description="Also start image_source as the camera"
            ),
            DeclareLaunchArgument(
                "source",
                default_value="generator",
                description="image_source input: generator, a folder, a video file or a device",
            ),
            DeclareLaunchArgument(
                "camera_topic",
                default_value="image_raw",
                description="Camera topic of head_node (and of image_source), e.g. /camera/color/image_raw; "
                "relative names are inside the namespace",
            ),
            DeclareLaunchArgument("dds_profile", default_value="auto", description=ARGUMENT_DESCRIPTION),
            OpaqueFunction(function=apply_in_launch),  # the nodes below get config/fastdds.xml unless one is exported
            GroupAction(
                [
                    PushRosNamespace(LaunchConfiguration("namespace")),
                    Node(
                        package="splitcomp_head_node",
                        executable="head_node",
                        name="head_node",
                        output="screen",
                        parameters=[LaunchConfiguration("head_config"), {"bundle": bundle}],
                        remappings=camera_remaps,
                    ),
                    Node(
                        package="splitcomp_tools",
                        executable="image_source",
                        name="image_source",
                        output="screen",
                        parameters=[{"source": LaunchConfiguration("source")}],
                        remappings=camera_remaps,
                        condition=IfCondition(LaunchConfiguration("image_source")),
                    ),
                ]
            ),
        ]
    )

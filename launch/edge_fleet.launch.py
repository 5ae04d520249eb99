"""Edge side for a fleet: one tail node serving many robots, batching their frames (docs/fleet.md).

ros2 launch splitcomp_tools edge_fleet.launch.py bundle:=/path/to/bundle robots:="[robot1, robot2]"
    [namespace:=fleet] [max_batch:=8] [batch_wait_ms:=5] [inference_workers:=2] [backend:=onnxruntime|triton]
    [triton_url:=127.0.0.1:8001] [tail_config:=/path/to/tail.yaml] [dds_profile:=auto]

robots: YAML list of namespaces, each relative to `namespace`; robot r listens on r/splitcomp/features and
answers on r/splitcomp/classification. Several edge servers split the list between them (one launch each).
triton_model and triton_timeout_s come from tail_config (config/tail.yaml).
dds_profile: as in edge.launch.py (splitcomp_ros.dds_profile).
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
            DeclareLaunchArgument("robots", description="Robot namespaces to serve, a YAML list: [robot1, robot2]"),
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of the tail and its robots"),
            DeclareLaunchArgument("max_batch", default_value="8", description="Most frames per tail run"),
            DeclareLaunchArgument(
                "batch_wait_ms", default_value="5", description="How long (ms) a frame waits for others to batch"
            ),
            DeclareLaunchArgument(
                "inference_workers", default_value="2", description="Threads that each run a batch of frames"
            ),
            DeclareLaunchArgument("backend", default_value="onnxruntime", description="onnxruntime or triton"),
            DeclareLaunchArgument(
                "triton_url", default_value="127.0.0.1:8001", description="Triton's gRPC address (backend triton)"
            ),
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
                        parameters=[
                            LaunchConfiguration("tail_config"),
                            {
                                "bundle": LaunchConfiguration("bundle"),
                                "robots": LaunchConfiguration("robots"),
                                "max_batch": LaunchConfiguration("max_batch"),
                                "batch_wait_ms": LaunchConfiguration("batch_wait_ms"),
                                "inference_workers": LaunchConfiguration("inference_workers"),
                                "backend": LaunchConfiguration("backend"),
                                "triton_url": LaunchConfiguration("triton_url"),
                            },
                        ],
                    ),
                ]
            ),
        ]
    )

# syntax=docker/dockerfile:1
# Edge image: x86_64 server with an NVIDIA GPU (RTX 4090 class), CUDA 12, Ubuntu 24.04,
# ROS 2 Jazzy, and the tail node on the GPU through onnxruntime-gpu from PyPI.
#
# Build context: the repository root:
#   docker build -f docker/edge.Dockerfile -t splitcomp-edge:0.1.0 .
# or: docker compose -f docker/compose.yaml build. Run: docker/README.md.
#
# Base: nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04, the CUDA runtime and cuDNN 9 libraries that
# onnxruntime-gpu 1.26.0 is built against (its build_and_package_info says CUDA 12.8; 1.26.0 is
# the last PyPI release for CUDA 12, 1.27 moved to CUDA 13). Needs an NVIDIA driver >= 570 on
# the host (or >= 525 through CUDA minor-version compatibility). ROS 2 Jazzy comes from
# packages.ros.org: the stock Ubuntu 24.04 amd64 binaries.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS ros

# ros2-apt-source installs the packages.ros.org key and source list (the procedure of the ROS 2
# install guide, pinned to one release). ros-jazzy-ros-base is pinned to its upstream version;
# packages.ros.org keeps only the latest build of it, so the build stamp after "-1" is left free.
# Ubuntu's own packages follow the pinned base image; exact versions of them vanish from the
# archive with every security update, so they are not pinned.
ARG ROS_APT_SOURCE_VERSION=1.1.0
# The nodes run as this user. uid 1000 by default, the usual first user of a host, so Fast DDS
# shared memory works with ros2 tools run there (Ubuntu 24.04's own "ubuntu" user of that uid is
# removed); "video" gives access to cameras.
ARG SPLITCOMP_UID=1000
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    ROS_DISTRO=jazzy

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && curl -fsSL -o /tmp/ros2-apt-source.deb \
      "https://github.com/ros-infrastructure/ros-apt-source/releases/download/${ROS_APT_SOURCE_VERSION}/ros2-apt-source_${ROS_APT_SOURCE_VERSION}.noble_all.deb" \
 && apt-get install -y --no-install-recommends /tmp/ros2-apt-source.deb \
 && apt-get update \
 && apt-get install -y --no-install-recommends "ros-jazzy-ros-base=0.11.0-1*" python3-venv \
 && rm -rf /var/lib/apt/lists/* /tmp/ros2-apt-source.deb

RUN existing=$(getent passwd "${SPLITCOMP_UID}" | cut -d: -f1 || true) \
 && if [ -n "${existing}" ]; then userdel "${existing}"; fi \
 && useradd --create-home --uid "${SPLITCOMP_UID}" --groups video splitcomp


FROM ros AS builder

# Python packages go into a virtual environment that also sees ROS's own Python packages, as
# scripts/setup.sh does with a system ROS: requirements/system-ros.txt is pinned for it (Jazzy's
# message modules are compiled against numpy 1). Only its CPU onnxruntime is swapped for the GPU
# build below. colcon and its setuptools keep their pins from requirements/ros-jazzy.txt.
ARG ONNXRUNTIME_GPU_VERSION=1.26.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake python3-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /workspace
COPY requirements/system-ros.txt requirements/ros-jazzy.txt requirements/
RUN python3 -m venv --system-site-packages /opt/splitcomp/venv \
 && /opt/splitcomp/venv/bin/python -m pip install --no-cache-dir pip==25.3 \
 && grep -E '^(colcon-common-extensions|catkin-pkg|setuptools)==' requirements/ros-jazzy.txt > /tmp/build-tools.txt \
 && grep -vE '^(onnxruntime)==' requirements/system-ros.txt > /tmp/python.txt \
 && /opt/splitcomp/venv/bin/python -m pip install --no-cache-dir -r /tmp/build-tools.txt -r /tmp/python.txt \
      "onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}"

COPY colcon.meta ./
COPY splitcomp_msgs splitcomp_msgs/
COPY splitcomp_core splitcomp_core/
COPY splitcomp_ros splitcomp_ros/
COPY splitcomp_head_node splitcomp_head_node/
COPY splitcomp_tail_node splitcomp_tail_node/
COPY splitcomp_tools splitcomp_tools/
COPY launch launch/
COPY config config/
# Plain colcon on the image's ROS, run from the venv so that the nodes' scripts start the venv's
# Python. The import at the end fails the build if a dependency or the CUDA provider is missing.
RUN . "/opt/ros/${ROS_DISTRO}/setup.bash" \
 && export PATH="/opt/splitcomp/venv/bin:${PATH}" \
 && colcon --log-base /tmp/colcon-log build --build-base /tmp/colcon-build --install-base /opt/splitcomp/install \
      --event-handlers console_direct- summary+ \
      --cmake-args -DPython3_EXECUTABLE=/opt/splitcomp/venv/bin/python -DBUILD_TESTING=OFF \
 && rm -rf /tmp/colcon-build /tmp/colcon-log \
 && . /opt/splitcomp/install/setup.bash \
 && python -c "import onnxruntime, splitcomp_tail_node.tail_node, splitcomp_head_node.head_node, splitcomp_tools.image_source; \
assert 'CUDAExecutionProvider' in onnxruntime.get_available_providers(), onnxruntime.get_available_providers()"


FROM ros AS runtime

ARG SPLITCOMP_UID=1000
COPY --from=builder /opt/splitcomp /opt/splitcomp
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/splitcomp-entrypoint
# The tuned Fast DDS profile (config/fastdds.xml, installed with splitcomp_ros) for every process in
# the container: a launch, `ros2 run` by hand, a camera driver. Jazzy's Fast DDS 2 reads it from
# FASTRTPS_DEFAULT_PROFILES_FILE (Kilted on: FASTDDS_...; splitcomp_ros/dds_profile.py decides,
# tests/test_docker_files.py checks). `docker run -e FASTRTPS_DEFAULT_PROFILES_FILE=...` points elsewhere.
ENV VIRTUAL_ENV=/opt/splitcomp/venv \
    PATH=/opt/splitcomp/venv/bin:${PATH} \
    FASTRTPS_DEFAULT_PROFILES_FILE=/opt/splitcomp/install/share/splitcomp_ros/config/fastdds.xml
USER ${SPLITCOMP_UID}
WORKDIR /home/splitcomp
ENTRYPOINT ["/usr/local/bin/splitcomp-entrypoint"]
CMD ["ros2", "launch", "splitcomp_tools", "edge.launch.py", "bundle:=/bundle"]

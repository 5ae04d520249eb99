# Source this file (bash) to use the built workspace: `source scripts/env.sh`.
# It activates the virtual environment, exposes the ROS 2 prefix the PyPI wheels install into
# it, and sources the colcon install space.
_splitcomp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_splitcomp_venv=${SPLITCOMP_VENV:-$_splitcomp_root/.venv}
# shellcheck disable=SC1091
source "$_splitcomp_venv/bin/activate"
if [[ -z ${ROS_DISTRO:-} ]]; then
  export AMENT_PREFIX_PATH="$_splitcomp_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$_splitcomp_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
# Camera frames exceed Fast DDS's default shared-memory segment; see config/fastdds.xml.
export FASTRTPS_DEFAULT_PROFILES_FILE=${FASTRTPS_DEFAULT_PROFILES_FILE:-$_splitcomp_root/config/fastdds.xml}
# shellcheck disable=SC1091
source "$_splitcomp_root/install/setup.bash"
unset _splitcomp_root _splitcomp_venv

# Source this file (bash) to use the built workspace: `source scripts/env.sh`.
# It activates the virtual environment, exposes the ROS 2 prefix the PyPI wheels install into
# it, and sources the colcon install space. With SPLITCOMP_PYPI_ROS=kilted (as for setup.sh) it
# uses the Kilted ones instead: .venv-kilted and install-kilted.
_splitcomp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${SPLITCOMP_PYPI_ROS:-jazzy} in
  jazzy) _splitcomp_suffix="" ;;
  kilted) _splitcomp_suffix="-kilted" ;;
  *)
    printf '[env] error: SPLITCOMP_PYPI_ROS=%s; expected jazzy or kilted\n' "$SPLITCOMP_PYPI_ROS" >&2
    unset _splitcomp_root
    return 1
    ;;
esac
_splitcomp_venv=${SPLITCOMP_VENV:-$_splitcomp_root/.venv$_splitcomp_suffix}
# shellcheck disable=SC1091
source "$_splitcomp_venv/bin/activate"
if [[ -z ${ROS_DISTRO:-} ]]; then
  export AMENT_PREFIX_PATH="$_splitcomp_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$_splitcomp_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
# Camera frames exceed Fast DDS's default shared-memory segment; see config/fastdds.xml.
# Fast DDS 2 (Humble, Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE; Fast DDS 3 (Kilted on) reads
# FASTDDS_DEFAULT_PROFILES_FILE, and its rmw warns at every node start while the old one is set.
# The launch files make the same choice in splitcomp_ros/dds_profile.py (tests/test_deploy_profile.py
# checks that this list matches); a profile already exported is kept.
case ${ROS_DISTRO:-${SPLITCOMP_PYPI_ROS:-jazzy}} in
  humble | iron | jazzy)
    export FASTRTPS_DEFAULT_PROFILES_FILE=${FASTRTPS_DEFAULT_PROFILES_FILE:-$_splitcomp_root/config/fastdds.xml} ;;
  *)
    export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$_splitcomp_root/config/fastdds.xml} ;;
esac
# shellcheck disable=SC1091
source "$_splitcomp_root/install$_splitcomp_suffix/setup.bash"
unset _splitcomp_root _splitcomp_venv _splitcomp_suffix

#!/usr/bin/env bash
# Prepare a machine for splitcomp: a virtual environment with pinned dependencies, then a colcon
# build of the workspace. Without a sourced ROS 2 it installs ROS 2 Jazzy from PyPI wheels; with
# one (ROS_DISTRO set, e.g. Humble on a Jetson) it uses that ROS and adds only Python packages.
# A second run checks two digests and returns: it reinstalls or rebuilds only what changed.
#
# Environment: SPLITCOMP_VENV (default .venv), PYTHON (default python3), SPLITCOMP_SKIP_TOOLS=1
# to leave out torch and the offline-tool packages (robot and edge images need only the nodes).
# With the tools it also wants Debian's chromium for the studio's browser test (installed with apt
# when run as root; otherwise the apt line is printed and that test skips, saying so).
# SPLITCOMP_PYPI_ROS=kilted installs ROS 2 Kilted from PyPI instead of Jazzy, into its own venv
# (.venv-kilted) and colcon spaces (build-kilted, install-kilted, log-kilted); source env.sh with
# the same variable set. (Not ROS_DISTRO: that one means a system ROS is sourced.)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pypi_ros=${SPLITCOMP_PYPI_ROS:-jazzy}
case $pypi_ros in
  jazzy) suffix="" ;;
  kilted) suffix="-$pypi_ros" ;;
  *) printf '[setup] error: SPLITCOMP_PYPI_ROS=%s; expected jazzy or kilted\n' "$pypi_ros" >&2; exit 1 ;;
esac
if [[ -n ${ROS_DISTRO:-} && -n ${SPLITCOMP_PYPI_ROS:-} ]]; then
  printf '[setup] error: SPLITCOMP_PYPI_ROS=%s, but ROS 2 %s is sourced; use one or the other (a fresh shell)\n' \
    "$SPLITCOMP_PYPI_ROS" "$ROS_DISTRO" >&2
  exit 1
fi
venv=${SPLITCOMP_VENV:-$root/.venv$suffix}
python=${PYTHON:-python3}
packages=(splitcomp_msgs splitcomp_core splitcomp_ros splitcomp_head_node splitcomp_tail_node splitcomp_tools)

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Names relative to the checkout, so that a checkout elsewhere sharing the venv (SPLITCOMP_VENV) agrees.
digest() { sha256sum "$@" 2>/dev/null | sed "s#  $root/#  #" | sha256sum | cut -d' ' -f1; }

ensure_system_tools() {
  local missing=()
  command -v "$python" >/dev/null || missing+=(python3)
  "$python" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  "$python" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || missing+=(python3-dev)
  command -v g++ >/dev/null || missing+=(g++)
  command -v cmake >/dev/null || missing+=(cmake)
  command -v make >/dev/null || missing+=(make)
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing system packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
  fi
}

ensure_browser() {
  [[ ${SPLITCOMP_SKIP_TOOLS:-0} == 1 ]] && return
  command -v chromium >/dev/null && return
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing chromium (the studio's browser test drives it)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    say "no chromium: the studio's browser test will skip; install it with: sudo apt-get install chromium"
  fi
}

check_python_version() {
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "Python >= 3.10 is needed, $("$python" --version 2>&1) found; set PYTHON=/path/to/python3.x"
}

requirement_files() {
  local files=("$root/requirements/test.txt")
  if [[ -n ${ROS_DISTRO:-} ]]; then
    files+=("$root/requirements/system-ros.txt")
  else
    files+=("$root/requirements/python.txt" "$root/requirements/ros-$pypi_ros.txt")
  fi
  [[ ${SPLITCOMP_SKIP_TOOLS:-0} == 1 ]] || files+=("$root/requirements/tools.txt" "$root/requirements/studio.txt")
  printf '%s\n' "${files[@]}"
}

# The lock (scripts/lock.py) pins every transitive version, for PyPI ROS 2 on the Python it was made
# with; elsewhere (a system ROS, another Python) only the requirement files' direct pins hold.
lock_file() {
  [[ -z ${ROS_DISTRO:-} ]] || return 0
  local python_tag
  python_tag=$("$python" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")') || return 0
  local lock="$root/requirements/lock/ros-$pypi_ros-$python_tag.txt"
  [[ -f $lock ]] && echo "$lock"
  return 0
}

install_dependencies() {
  mapfile -t reqs < <(requirement_files)
  local lock
  lock=$(lock_file)
  local stamp="$venv/.splitcomp-deps"
  local want
  want=$(digest "${reqs[@]}" "$root/requirements/no-deps.txt" $lock "$root/scripts/setup.sh" "$root/scripts/fix_ros_cmake_paths.py"; echo "${ROS_DISTRO:-pypi$suffix}")
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    say "dependencies up to date in $venv"
    return
  fi
  check_python_version
  if [[ -n ${ROS_DISTRO:-} ]]; then
    say "using the sourced ROS 2 $ROS_DISTRO; installing Python packages only"
    "$python" -m venv --system-site-packages "$venv"
  else
    say "installing ROS 2 ${pypi_ros^} from PyPI into $venv"
    "$python" -m venv "$venv"
  fi
  touch "$venv/COLCON_IGNORE"
  "$venv/bin/python" -m pip install -q --upgrade "pip==25.3"
  local args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  if [[ -n $lock ]]; then
    say "every version pinned by ${lock#"$root"/}"
    args+=(-c "$lock")
  elif [[ -z ${ROS_DISTRO:-} ]]; then
    say "no lock for this Python in requirements/lock/: direct pins only, transitive versions may differ"
  fi
  "$venv/bin/python" -m pip install -q "${args[@]}"
  [[ ${SPLITCOMP_SKIP_TOOLS:-0} == 1 ]] || "$venv/bin/python" -m pip install -q --no-deps -r "$root/requirements/no-deps.txt"
  [[ -n ${ROS_DISTRO:-} ]] || "$venv/bin/python" "$root/scripts/fix_ros_cmake_paths.py" "$venv"
  echo "$want" >"$stamp"
}

ros_prefix_env() {
  if [[ -z ${ROS_DISTRO:-} ]]; then
    export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  fi
}

build_workspace() {
  local stamp="$root/install$suffix/.splitcomp-build"
  local want
  # Sources are symlinked into install/, so only the files that shape the build matter here.
  want=$(cd "$root" && digest $(find "${packages[@]}" launch config colcon.meta -type f \
    \( -name package.xml -o -name setup.py -o -name setup.cfg -o -name CMakeLists.txt -o -name '*.msg' \
       -o -name __init__.py -o -path 'launch/*' -o -path 'config/*' -o -path '*/resource/*' -o -path '*/models/*' \
       -o -path '*/studio/static/*' -o -name colcon.meta \) | sort) "$venv/.splitcomp-deps")
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    say "workspace build up to date"
    return
  fi
  say "building the workspace with colcon"
  ros_prefix_env
  # The PyPI install brings its own colcon; a system ROS has python3-colcon-common-extensions.
  local colcon="$venv/bin/colcon"
  [[ -x $colcon ]] || colcon=$(command -v colcon) ||
    die "colcon not found; install it with: sudo apt-get install python3-colcon-common-extensions"
  (cd "$root" && PATH="$venv/bin:$PATH" "$colcon" --log-base "log$suffix" build --symlink-install \
    --build-base "build$suffix" --install-base "install$suffix" \
    --base-paths "${packages[@]}" --event-handlers console_direct- summary+ \
    --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF)
  echo "$want" >"$stamp"
}

ensure_system_tools
ensure_browser
install_dependencies
# The Triton server of the tests and `bench fleet` lives in its own venv (it needs numpy<2).
[[ ${SPLITCOMP_SKIP_TOOLS:-0} == 1 ]] || PYTHON=$python bash "$root/scripts/triton_venv.sh"
build_workspace
say "ready: ${SPLITCOMP_PYPI_ROS:+SPLITCOMP_PYPI_ROS=$SPLITCOMP_PYPI_ROS }source $root/scripts/env.sh to use the workspace"

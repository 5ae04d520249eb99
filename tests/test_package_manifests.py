"""Every ROS package's package.xml is valid and declares what the package's code imports."""

import ast
import pathlib
import sys

import pytest
from catkin_pkg.package import parse_package

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in ROOT.glob("splitcomp_*/package.xml"))

# Python module -> the rosdep key a package.xml names for it.
ROSDEP_KEY = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "onnx": "python3-onnx",
    "onnxruntime": "python3-onnxruntime",
    "zstandard": "python3-zstandard",
    "lz4": "python3-lz4",
    "jsonschema": "python3-jsonschema",
    "yaml": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "torch": "python3-torch",
    "rosbags": "python3-rosbags",
    "google": "python3-protobuf",
    "fastapi": "python3-fastapi",
    "uvicorn": "python3-uvicorn",
    "python_multipart": "python3-multipart",
    "PIL": "python3-pil",
    "pydantic": "python3-pydantic",
    "av": "python3-av",
}
# Imported only inside a guard, with a tested path when missing (see the README).
OPTIONAL = {
    "cv_bridge",
    "vision_msgs",
    "torchvision",
    "timm",
    "launch",
    "launch_ros",
    "onnxscript",
    "efficientnet_lite_pytorch",  # pip only (requirements/tools.txt): `export efficientnet_lite0` says so when missing
    "constriction",  # pip only (requirements/python.txt; no aarch64 wheel): codec entropy says so when missing
    "tritonclient",  # pip only (requirements/python.txt): backend triton says so when missing
}


def imported_top_level_modules(package_dir: pathlib.Path) -> set:
    names = set()
    code_dir = package_dir / package_dir.name
    for source in code_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OPTIONAL - {package_dir.name, "setuptools"}


def test_every_package_is_found():
    assert {p.name for p in PACKAGES} >= {
        "splitcomp_msgs",
        "splitcomp_core",
        "splitcomp_head_node",
        "splitcomp_tail_node",
        "splitcomp_tools",
    }


@pytest.mark.parametrize("package_dir", PACKAGES, ids=lambda p: p.name)
def test_package_xml_is_valid_format_3(package_dir):
    package = parse_package(str(package_dir / "package.xml"))
    package.validate()
    assert package.package_format == 3
    assert package.name == package_dir.name
    build_type = package.get_build_type()
    assert build_type == ("ament_cmake" if (package_dir / "CMakeLists.txt").exists() else "ament_python")


@pytest.mark.parametrize("package_dir", [p for p in PACKAGES if (p / "setup.py").exists()], ids=lambda p: p.name)
def test_imports_are_declared(package_dir):
    package = parse_package(str(package_dir / "package.xml"))
    declared = {d.name for d in package.exec_depends + package.build_export_depends}
    needed = {ROSDEP_KEY.get(module, module) for module in imported_top_level_modules(package_dir)}
    assert not needed - declared, f"{package_dir.name}/package.xml lacks <exec_depend> for {sorted(needed - declared)}"


@pytest.mark.parametrize("package_dir", [p for p in PACKAGES if (p / "setup.py").exists()], ids=lambda p: p.name)
def test_ament_python_layout(package_dir):
    name = package_dir.name
    assert (package_dir / "resource" / name).is_file()
    setup_cfg = (package_dir / "setup.cfg").read_text()
    assert f"script_dir=$base/lib/{name}" in setup_cfg
    assert f"install_scripts=$base/lib/{name}" in setup_cfg


def test_core_never_imports_rclpy():
    modules = imported_top_level_modules(ROOT / "splitcomp_core")
    assert not modules & {"rclpy", "sensor_msgs", "std_msgs", "splitcomp_msgs", "diagnostic_msgs"}

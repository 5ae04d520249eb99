from glob import glob

from setuptools import find_packages, setup

package_name = "splitcomp_tools"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("../launch/*.launch.py")),
        # all but fastdds.xml, which splitcomp_ros installs (the nodes read it, and may not import the tools)
        ("share/" + package_name + "/config", [f for f in glob("../config/*") if not f.endswith("fastdds.xml")]),
        ("share/" + package_name + "/models/shapes", glob("models/shapes/*")),
        ("share/" + package_name + "/studio", glob("splitcomp_tools/studio/static/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="splitcomp maintainers",
    maintainer_email="maintainers@splitcomp.dev",
    description="Offline tools of splitcomp (export, analyze, split, calibrate, bench, demo, studio) and the image_source and overlay helper nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "export = splitcomp_tools.export:main",
            "analyze = splitcomp_tools.analyze:main",
            "split = splitcomp_tools.split:main",
            "calibrate = splitcomp_tools.calibrate:main",
            "plan = splitcomp_tools.plan:main",
            "bench = splitcomp_tools.bench:main",
            "ros = splitcomp_tools.ros:main",
            "testbed = splitcomp_tools.testbed:main",
            "classify = splitcomp_tools.classify:main",
            "demo = splitcomp_tools.demo.command:main",
            "image_source = splitcomp_tools.image_source:main",
            "overlay = splitcomp_tools.overlay:main",
            "train_shapes = splitcomp_tools.train_shapes:main",
            "distill = splitcomp_tools.distill:main",
            "studio = splitcomp_tools.studio.server:main",
            "triton_repo = splitcomp_tools.triton_repo:main",
        ],
    },
)

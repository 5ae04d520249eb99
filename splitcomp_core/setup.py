from setuptools import find_packages, setup

package_name = "splitcomp_core"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="splitcomp maintainers",
    maintainer_email="maintainers@splitcomp.dev",
    description="ROS-free core of splitcomp: the feature codec, split bundles, the ONNX Runtime wrapper, and image pre- and post-processing.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [],
    },
)

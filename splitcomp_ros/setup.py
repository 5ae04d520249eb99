from setuptools import find_packages, setup

package_name = "splitcomp_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        # The Fast DDS profile every node takes unless one is exported (splitcomp_ros/dds_profile.py).
        ("share/" + package_name + "/config", ["../config/fastdds.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="splitcomp maintainers",
    maintainer_email="maintainers@splitcomp.dev",
    description="ROS adapters shared by the splitcomp nodes: message conversion, image conversion, diagnostics and QoS.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [],
    },
)

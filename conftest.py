"""Test-session isolation for DDS: every pytest run talks on its own domain, on this host only.

Tests start real ROS 2 processes; without this, two runs on one machine (or a developer's nodes)
would hear each other's topics. Child processes inherit the environment set here.
"""

import os


def pytest_configure(config):
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    if os.environ.get("ROS_DISTRO") == "humble":
        os.environ["ROS_LOCALHOST_ONLY"] = "1"
    else:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")

"""Start the pytriton wheel's tritonserver on free 127.0.0.1 ports, wait until it is ready, stop it by PID.

The server comes from .venv-triton (scripts/triton_venv.sh; SPLITCOMP_TRITON_VENV overrides). Where it
cannot start, `find_server` returns why, for the tests to skip with that reason. The four steps the wheel's
server needs when used on its own are in docs/triton.md.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]


def triton_venv() -> pathlib.Path:
    return pathlib.Path(os.environ.get("SPLITCOMP_TRITON_VENV", ROOT / ".venv-triton"))


def find_server() -> tuple[dict | None, str]:
    """The venv's paths (site-packages, libpython dir, interpreter bin, Python version), or None and why not."""
    python = triton_venv() / "bin" / "python"
    if not python.exists():
        return None, f"no Triton venv at {triton_venv()}: run scripts/triton_venv.sh"
    code = "import sys,sysconfig,json;print(json.dumps([sysconfig.get_paths()['purelib'],sysconfig.get_config_var('LIBDIR'),sys._base_executable,f'{sys.version_info[0]}.{sys.version_info[1]}']))"
    site, libdir, base, version = json.loads(
        subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    info = {"site": pathlib.Path(site), "libdir": libdir, "bin": str(pathlib.Path(base).parent), "version": version}
    if not (info["site"] / "pytriton/tritonserver/bin/tritonserver").exists():
        return None, f"{site} has no pytriton/tritonserver: run scripts/triton_venv.sh"
    return info, ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """One tritonserver process over `repo`; `restart` keeps its ports, so a client's URL stays valid."""

    def __init__(self, info: dict, repo: pathlib.Path, work: pathlib.Path) -> None:
        self.info, self.repo, self.log = info, repo, work / "tritonserver.log"
        self.backends = work / "backends"
        python = self.backends / "python"
        python.mkdir(parents=True, exist_ok=True)
        wheel = info["site"] / "pytriton/tritonserver"
        for source in (
            "backends/python/libtriton_python.so",
            "backends/python/triton_python_backend_utils.py",
            f"python_backend_stubs/{info['version']}/triton_python_backend_stub",
        ):
            shutil.copy2(wheel / source, python)
        self.ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
        self.url = f"127.0.0.1:{self.ports['grpc']}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        site = self.info["site"]
        env = {
            "PATH": f"{self.info['bin']}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "SPLITCOMP_TRITON_SITE_PACKAGES": str(site),
            "LD_LIBRARY_PATH": f"{site}/nvidia_pytriton.libs:{self.info['libdir']}",
        }
        args = [
            str(site / "pytriton/tritonserver/bin/tritonserver"),
            f"--model-repository={self.repo}",
            f"--backend-directory={self.backends}",
            "--allow-metrics=false",
        ]
        args += [f"--{kind}-address=127.0.0.1" for kind in self.ports] + [
            f"--{kind}-port={port}" for kind, port in self.ports.items()
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['http']}/v2/health/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"tritonserver not ready in {timeout_s} s; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

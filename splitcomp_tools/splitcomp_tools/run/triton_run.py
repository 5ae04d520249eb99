"""A tritonserver on free 127.0.0.1 ports, ready before it is handed out, stopped by PID: for `bench fleet`'s
triton configuration and for the tests that run the real server.

The server is the pytriton wheel's, from .venv-triton (scripts/triton_venv.sh; SPLITCOMP_TRITON_VENV
overrides); where it cannot start, `find_server` and `start_for` say why, and the benchmark skips the
configuration (the tests skip). The steps the wheel's server needs on its own are in docs/triton.md. The
repository is one `triton_repo` writes (platform python).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from splitcomp_core.bundle import Bundle
from splitcomp_tools.model.triton.repository import write_triton_repo

_PATHS = (
    "import sys,sysconfig,json;print(json.dumps([sysconfig.get_paths()['purelib'],"
    "sysconfig.get_config_var('LIBDIR'),sys._base_executable,f'{sys.version_info[0]}.{sys.version_info[1]}']))"
)


class TritonStartError(RuntimeError):
    """The server exited or did not become ready; the message names its log."""


def find_server() -> tuple[dict | None, str]:
    """The Triton venv's paths (site-packages, libpython dir, interpreter bin, Python version), or None and why not."""
    venv = Path(os.environ.get("SPLITCOMP_TRITON_VENV", ".venv-triton")).resolve()
    python = venv / "bin" / "python"
    if not python.exists():
        return None, f"no Triton venv at {venv}: run scripts/triton_venv.sh or set SPLITCOMP_TRITON_VENV"
    found = subprocess.run([python, "-c", _PATHS], capture_output=True, text=True)
    if found.returncode != 0:
        return None, f"{python} does not run: rerun scripts/triton_venv.sh"
    site, libdir, base, version = json.loads(found.stdout)
    if not (Path(site) / "pytriton/tritonserver/bin/tritonserver").exists():
        return None, f"{site} has no pytriton/tritonserver: run scripts/triton_venv.sh"
    return {"site": Path(site), "libdir": libdir, "bin": str(Path(base).parent), "version": version}, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """One tritonserver process over `repo`; `url` is its gRPC address. Its ports are chosen once, so after
    `stop` a second `start` serves at the same `url` (a client's reconnect can be tested)."""

    def __init__(self, info: dict, repo: Path, work: Path) -> None:
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
        self.ports = {"http": _free_port(), "grpc": _free_port(), "metrics": _free_port()}
        self.url = f"127.0.0.1:{self.ports['grpc']}"
        self.process: subprocess.Popen | None = None

    def pid(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.pid

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the server and return once it reports ready; TritonStartError (and nothing left running) if not."""
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
        args += [f"--{kind}-address=127.0.0.1" for kind in self.ports]
        args += [f"--{kind}-port={port}" for kind, port in self.ports.items()]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonStartError(f"tritonserver exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['http']}/v2/health/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TritonStartError(f"tritonserver not ready in {timeout_s:g} s; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def start_for(bundle: Bundle, work: Path, timeout_s: float = 90.0) -> tuple[TritonServer | None, str]:
    """A ready server answering the bundle's tail, or None and why it cannot run here."""
    if bundle.cuts:
        return None, "a multi-cut bundle: give --triton-url of a server holding one model per cut"
    info, why = find_server()
    if info is None:
        return None, why
    work.mkdir(parents=True, exist_ok=True)
    write_triton_repo(bundle, work / "repo", overwrite=True)
    server = TritonServer(info, work / "repo", work)
    try:
        server.start(timeout_s)
    except TritonStartError as exc:
        return None, str(exc)
    return server, ""

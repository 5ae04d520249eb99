"""A tritonserver for `bench fleet`'s triton configuration: the pytriton wheel's server over a python-backend
repository holding the bundle's tail, on free 127.0.0.1 ports, stopped by PID.

The server comes from .venv-triton (scripts/triton_venv.sh; SPLITCOMP_TRITON_VENV overrides); where it cannot
start, `start_for` says why and the benchmark skips the configuration. The steps the wheel's server needs on
its own are in docs/triton.md. The repository is the one `triton_repo` writes (platform python).
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _venv_paths() -> tuple[dict | None, str]:
    venv = Path(os.environ.get("SPLITCOMP_TRITON_VENV", ".venv-triton")).resolve()
    python = venv / "bin" / "python"
    if not python.exists():
        return None, f"no Triton venv at {venv}: run scripts/triton_venv.sh or set SPLITCOMP_TRITON_VENV"
    code = (
        "import sys,sysconfig,json;print(json.dumps([sysconfig.get_paths()['purelib'],"
        "sysconfig.get_config_var('LIBDIR'),sys._base_executable,f'{sys.version_info[0]}.{sys.version_info[1]}']))"
    )
    site, libdir, base, version = json.loads(
        subprocess.run([python, "-c", code], capture_output=True, text=True).stdout
    )
    if not (Path(site) / "pytriton/tritonserver/bin/tritonserver").exists():
        return None, f"{site} has no pytriton/tritonserver: run scripts/triton_venv.sh"
    return {"site": Path(site), "libdir": libdir, "bin": str(Path(base).parent), "version": version}, ""


class Server:
    """One tritonserver process; `url` is its gRPC address."""

    def __init__(self, process: subprocess.Popen, url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def start_for(bundle: Bundle, work: Path, timeout_s: float = 90.0) -> tuple[Server | None, str]:
    """A ready server answering the bundle's tail, or None and why it cannot run here."""
    if bundle.cuts:
        return None, "a multi-cut bundle: give --triton-url of a server holding one model per cut"
    info, why = _venv_paths()
    if info is None:
        return None, why
    backends = work / "backends" / "python"
    backends.mkdir(parents=True, exist_ok=True)
    wheel = info["site"] / "pytriton/tritonserver"
    for source in ("backends/python/libtriton_python.so", "backends/python/triton_python_backend_utils.py"):
        shutil.copy2(wheel / source, backends)
    shutil.copy2(wheel / f"python_backend_stubs/{info['version']}/triton_python_backend_stub", backends)
    write_triton_repo(bundle, work / "repo", overwrite=True)
    ports = {"http": _free_port(), "grpc": _free_port(), "metrics": _free_port()}
    env = {
        "PATH": f"{info['bin']}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "SPLITCOMP_TRITON_SITE_PACKAGES": str(info["site"]),
        "LD_LIBRARY_PATH": f"{info['site']}/nvidia_pytriton.libs:{info['libdir']}",
    }
    args = [str(wheel / "bin/tritonserver"), f"--model-repository={work / 'repo'}"]
    args += [f"--backend-directory={backends.parent}", "--allow-metrics=false"]
    args += [f"--{k}-address=127.0.0.1" for k in ports] + [f"--{k}-port={p}" for k, p in ports.items()]
    log = work / "tritonserver.log"
    with log.open("ab") as out:
        server = Server(
            subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT), f"127.0.0.1:{ports['grpc']}", log
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['http']}/v2/health/ready", timeout=1):
                return server, ""
        except OSError:
            time.sleep(0.2)
    server.stop()
    return None, f"tritonserver did not become ready; see {log}"

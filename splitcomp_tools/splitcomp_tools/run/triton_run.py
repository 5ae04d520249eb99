"""A tritonserver for `bench fleet`'s triton configuration: the pytriton wheel's server over a python-backend
repository holding the bundle's tail, on free 127.0.0.1 ports, stopped by PID.

The server comes from .venv-triton (scripts/triton_venv.sh; SPLITCOMP_TRITON_VENV overrides); where it cannot
start, `start_for` says why and the benchmark skips the configuration. The steps the wheel's server needs on
its own are in docs/triton.md. The repository is written here until the `triton_repo` tool can write it.
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

DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32"}
MODEL_PY = """import json, os, sys
sys.path[:0] = [p for p in os.environ.get("SPLITCOMP_TRITON_SITE_PACKAGES", "").split(os.pathsep) if p]
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.inputs = [i["name"] for i in config["input"]]
        self.output = config["output"][0]["name"]
        path = os.path.join(args["model_repository"], args["model_version"], "tail.onnx")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        feeds = {n: [pb.get_input_tensor_by_name(r, n).as_numpy() for r in requests] for n in self.inputs}
        scores = self.session.run([self.output], {n: np.concatenate(v) for n, v in feeds.items()})[0]
        answers, start = [], 0
        for row in feeds[self.inputs[0]]:
            part = np.ascontiguousarray(scores[start : start + len(row)])
            answers.append(pb.InferenceResponse(output_tensors=[pb.Tensor(self.output, part)]))
            start += len(row)
        return answers
"""


def _tensor(name: str, dtype: str, shape) -> str:
    dims = ", ".join(str(d) for d in list(shape)[1:])
    return f'{{ name: "{name}" data_type: {DTYPES.get(dtype, "TYPE_FP32")} dims: [{dims}] }}'


def write_repository(bundle: Bundle, repo: Path, max_batch: int = 16, queue_delay_us: int = 2000) -> str:
    """A python-backend model of the bundle's tail under the bundle directory's name (the tail's default)."""
    name = bundle.path.name
    version = repo / name / "1"
    version.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle.tail_path, version / "tail.onnx")
    (version / "model.py").write_text(MODEL_PY)
    inputs = ", ".join(_tensor(t.name, t.dtype, t.shape) for t in bundle.manifest.cut)
    output = bundle.manifest.output
    config = (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: {max_batch}\ninput [{inputs}]\n'
        f"output [{_tensor(output.name, 'float32', output.shape)}]\n"
        f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}\n"
        "instance_group [{ kind: KIND_CPU count: 1 }]\n"
    )
    (repo / name / "config.pbtxt").write_text(config)
    return name


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
    write_repository(bundle, work / "repo")
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

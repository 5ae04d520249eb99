"""A robot and an edge server on one machine: two network namespaces joined by a veth pair, each way shaped by tbf.

On one host Fast DDS would move every byte through shared memory and never touch a network, so a
benchmark there says nothing about a link. The bed gives each side its own network namespace (its
own addresses, so Fast DDS counts them as two hosts) and its own tmpfs over /dev/shm (so no
shared-memory segment is visible from the other side, whatever a Fast DDS version thinks a host
is), and the nodes use a UDP-only Fast DDS profile. Each veth end has a `tbf` qdisc at the link
rate: a bucket of max(1600 B, 1 ms of rate), which one full frame always passes, and a 2 MB queue,
larger than what DDS senders with default socket buffers can put in flight, so a burst is delayed,
not dropped. The default send buffer is kept: in synchronous publishing it is the flow control.

Discovery works across the veth by multicast (SPDP to 239.255.0.1, routed to the veth), inside the
bed only: ROS_AUTOMATIC_DISCOVERY_RANGE is SUBNET there (LOCALHOST, which the tests set elsewhere,
would keep the sides apart).

Names carry a per-run prefix (sc<pid>, then sc<pid>x1...), so parallel runs never collide, and the
addresses exist only inside these namespaces. Everything is removed on exit, on an exception and
on SIGINT, SIGTERM or SIGHUP; after a SIGKILL, `python -m splitcomp_tools.testbed cleanup PREFIX`
removes what is left. Needs root, iproute2 (`ip`, `tc`) and a kernel with tbf.

With a packet loss (`loss_pct`, also 0) each veth end gets an HTB tree instead of the bare tbf, which drops
that share of packets at random each way (run/link_loss.py); `set_loss` changes it in place.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from splitcomp_core.errors import SplitcompError
from splitcomp_ros.dds_profile import PROFILE_VARIABLES, profile_variable, ros_distribution
from splitcomp_tools.run import link_loss

SIDES = ("robot", "edge")
QUEUE_BYTES = 2 * 1024 * 1024
MIN_BURST_BYTES = 1600  # one 1514-byte frame passes; smaller and tbf drops full frames
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # camera frames over UDP inside the robot side
SHM_SIZE = "512m"
ENV_VAR = "SPLITCOMP_TESTBED"  # a child started by a bed finds the bed's names here
_CLEARED_VARIABLES = (
    *PROFILE_VARIABLES,
    "FASTDDS_BUILTIN_TRANSPORTS",
    "ROS_LOCALHOST_ONLY",
    "ROS_STATIC_PEERS",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "RMW_FASTRTPS_PUBLICATION_MODE",
)


class TestbedError(SplitcompError):
    """The bed cannot be built or driven here; the message says what is missing."""


def tbf_arguments(mbps: float) -> list[str]:
    """`tc ... tbf` arguments for `mbps`: the rate, a bucket of max(1600 B, 1 ms of rate), a 2 MB queue."""
    if not 0.0 < mbps <= 100_000.0:
        raise TestbedError(f"link rate must be between 0 and 100000 Mbit/s, got {mbps}")
    bits = mbps * 1e6
    burst = max(MIN_BURST_BYTES, int(bits / 8 * 0.001))
    return ["rate", f"{round(bits)}bit", "burst", str(burst), "limit", str(QUEUE_BYTES)]


def fastdds_profile() -> str:
    """A Fast DDS profile (Humble to Kilted) with one UDPv4 transport and no built-in (shared-memory) transport."""
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>splitcomp_testbed_udp</transport_id>
      <type>UDPv4</type>
      <sendBufferSize>0</sendBufferSize>
      <receiveBufferSize>{RECEIVE_BUFFER_BYTES}</receiveBufferSize>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="splitcomp_testbed" is_default_profile="true">
    <rtps>
      <userTransports>
        <transport_id>splitcomp_testbed_udp</transport_id>
      </userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def why_unavailable() -> str | None:
    """None when a bed can be built here, else the reason (tests skip with it, tools print it)."""
    if os.geteuid() != 0:
        return "the test bed needs root (network namespaces, veth, tc)"
    for tool in ("ip", "tc", "mount"):
        if shutil.which(tool) is None:
            return f"the test bed needs `{tool}` (iproute2, util-linux)"
    probe = f"scprobe{os.getpid()}"
    made = _run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        link = _run(["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"], check=False)
        if link.returncode != 0:
            return f"cannot create a veth pair: {link.stderr.strip()}"
        tbf = _run(["tc", "-n", probe, "qdisc", "add", "dev", "p0", "root", "tbf", *tbf_arguments(10)], check=False)
        if tbf.returncode != 0:
            return f"cannot add a tbf qdisc: {tbf.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


@dataclasses.dataclass
class Bed:
    """The names of a built bed, and what any process (also one started inside it) can do with them."""

    __test__ = False  # "Test..." classes are not pytest's

    prefix: str
    namespaces: dict[str, str]
    devices: dict[str, str]
    addresses: dict[str, str]
    shm: dict[str, str]
    workdir: str
    domain_id: int
    rate_mbps: float
    loss_pct: float | None = None  # None: a bare tbf each way; a number: the HTB tree that can drop packets

    def command(self, side: str, argv: Sequence[str]) -> list[str]:
        """argv run inside `side`'s namespace with its own /dev/shm (`ip netns exec` keeps the PID: it execs)."""
        if side not in SIDES:
            raise TestbedError(f"side must be robot or edge, got {side!r}")
        return [
            "ip",
            "netns",
            "exec",
            self.namespaces[side],
            "sh",
            "-c",
            'mount --bind "$0" /dev/shm && exec "$@"',
            self.shm[side],
            *argv,
        ]

    def set_rate(self, mbps: float) -> float:
        """Change both directions at once (`tc qdisc change`, effective at once); returns the seconds it took."""
        start = time.monotonic()
        for side in SIDES:
            ns, dev = self.namespaces[side], self.devices[side]
            if self.loss_pct is None:
                _run(["tc", "-n", ns, "qdisc", "change", "dev", dev, "root", "tbf", *tbf_arguments(mbps)])
            else:
                _run(link_loss.rate_command(ns, dev, tbf_arguments(mbps)))
        self.rate_mbps = mbps
        return time.monotonic() - start

    def set_loss(self, loss_pct: float) -> None:
        """Drop this share of packets (percent) at random, each way, from now on (a bed built with a loss)."""
        if self.loss_pct is None:
            raise TestbedError("this bed was built without a packet loss; build it with one (0 will do) to change it")
        for side in SIDES:
            _run(link_loss.filter_command(self.namespaces[side], self.devices[side], loss_pct))
        self.loss_pct = link_loss.checked_loss(loss_pct)

    def packet_counts(self) -> tuple[int, int]:
        """(passed, dropped) packets so far, both ways together (a bed built with a loss)."""
        counts = [
            link_loss.packet_counts(
                _run(["tc", "-s", "-j", "-n", self.namespaces[side], "qdisc", "show", "dev", self.devices[side]]).stdout
            )
            for side in SIDES
        ]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    def qdisc_stats(self, side: str) -> str:
        return _run(["tc", "-s", "-n", self.namespaces[side], "qdisc", "show", "dev", self.devices[side]]).stdout

    def ros_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for ROS 2 processes in the bed: UDP-only profile, subnet discovery, the bed's domain.

        The profile goes into the variable this distribution's Fast DDS reads (dds_profile decides), so a
        launch started in the bed keeps it as a profile the user exported.
        """
        env = dict(os.environ if base is None else base)
        variable = profile_variable(ros_distribution(env))
        for name in _CLEARED_VARIABLES:
            env.pop(name, None)
        env[variable] = str(Path(self.workdir) / "fastdds.xml")
        env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
        env["ROS_DOMAIN_ID"] = str(self.domain_id)
        if env.get("ROS_DISTRO") == "humble":
            env["ROS_LOCALHOST_ONLY"] = "0"
        else:
            env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
        env[ENV_VAR] = json.dumps(dataclasses.asdict(self))
        return env

    @classmethod
    def from_env(cls) -> Bed:
        """The bed this process was started in (by `Testbed.run_in` or `command`)."""
        text = os.environ.get(ENV_VAR)
        if not text:
            raise TestbedError(f"not started inside a test bed ({ENV_VAR} is not set)")
        return cls(**json.loads(text))


class Testbed(Bed):
    """Builds a bed on entry and removes all of it on exit; use as a context manager.

    with Testbed(5.85) as bed:
        sub = bed.run_in("edge", [python, "listener.py"])
        pub = bed.run_in("robot", [python, "talker.py"])
        bed.set_rate(1.1)
    """

    _live: ClassVar[set[str]] = set()  # prefixes in use in this process

    def __init__(self, rate_mbps: float, domain_id: int | None = None, loss_pct: float | None = None) -> None:
        tbf_arguments(rate_mbps)
        loss = None if loss_pct is None else link_loss.checked_loss(loss_pct)
        prefix, k = f"sc{os.getpid()}", 0
        while prefix in Testbed._live:
            k += 1
            prefix = f"sc{os.getpid()}x{k}"
        n = os.getpid() % 250 + 1
        super().__init__(
            prefix=prefix,
            namespaces={side: f"{prefix}{side[0]}" for side in SIDES},
            devices={side: f"{prefix}{side[0]}0" for side in SIDES},
            addresses={"robot": f"10.213.{n}.1", "edge": f"10.213.{n}.2"},
            shm={},
            workdir="",
            domain_id=domain_id if domain_id is not None else 1 + (os.getpid() + k) % 100,
            rate_mbps=rate_mbps,
            loss_pct=loss,
        )
        self.processes: list[subprocess.Popen] = []
        self._undo: list[tuple[str, str]] = []
        self._handlers: dict[int, Any] = {}
        self._up = False

    def __enter__(self) -> Testbed:
        reason = why_unavailable()
        if reason:
            raise TestbedError(reason)
        Testbed._live.add(self.prefix)
        self._up = True
        self._catch_signals()
        atexit.register(self.teardown)
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def _build(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix=f"{self.prefix}_")
        self._undo.append(("dir", self.workdir))
        (Path(self.workdir) / "fastdds.xml").write_text(fastdds_profile())
        for side in SIDES:
            mount_point = Path(self.workdir) / f"shm_{side}"
            mount_point.mkdir()
            _run(["mount", "-t", "tmpfs", "-o", f"size={SHM_SIZE},mode=1777", f"{self.prefix}shm", str(mount_point)])
            self._undo.append(("mount", str(mount_point)))
            self.shm[side] = str(mount_point)
        for side in SIDES:
            _run(["ip", "netns", "add", self.namespaces[side]])
            self._undo.append(("netns", self.namespaces[side]))
        _run(["ip", "link", "add", self.devices["robot"], "type", "veth", "peer", "name", self.devices["edge"]])
        self._undo.append(("link", self.devices["robot"]))
        for side in SIDES:
            ns, dev = self.namespaces[side], self.devices[side]
            _run(["ip", "link", "set", dev, "netns", ns])
            _run(["ip", "-n", ns, "addr", "add", f"{self.addresses[side]}/24", "dev", dev])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "link", "set", dev, "multicast", "on", "up"])
            _run(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])  # SPDP multicast goes out the veth
            if self.loss_pct is None:
                _run(["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", *tbf_arguments(self.rate_mbps)])
            else:
                for command in link_loss.build_commands(ns, dev, tbf_arguments(self.rate_mbps), self.loss_pct):
                    _run(command)

    def run_in(self, side: str, argv: Sequence[str], env: Mapping[str, str] | None = None, **popen: Any):
        """Start argv in `side` (its own session, so it and its children end together); ended on teardown."""
        process = subprocess.Popen(
            self.command(side, argv),
            env=dict(env) if env is not None else self.ros_env(),
            start_new_session=True,
            **popen,
        )
        self.processes.append(process)
        return process

    def teardown(self) -> None:
        """End what run_in started, then remove links, namespaces, mounts and the work folder (idempotent)."""
        if not self._up:
            return
        self._up = False
        for sig in self._handlers:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        try:
            _stop(self.processes)
        finally:
            for kind, name in reversed(self._undo):
                _undo(kind, name, self)
            self._undo.clear()
            Testbed._live.discard(self.prefix)
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)
            self._handlers.clear()
            atexit.unregister(self.teardown)

    def leftovers(self) -> list[str]:
        """Anything of this bed still present: namespaces, links, mounts, the work folder (empty after teardown)."""
        return leftovers(self.prefix)

    def _catch_signals(self) -> None:
        """While the bed is up, SIGINT/SIGTERM/SIGHUP become exceptions, so `with` blocks unwind and clean up."""

        def raise_exit(signum: int, _frame: object) -> None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
                self._handlers[sig] = signal.signal(sig, raise_exit)


def _stop(processes: Sequence[subprocess.Popen], timeout: float = 5.0) -> None:
    """SIGINT (as Ctrl-C) to each process group, then SIGKILL to what is still there after `timeout`."""
    for process in processes:
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # start_new_session: the group id is the pid


def _undo(kind: str, name: str, bed: Bed) -> None:
    if kind == "link":  # deleting one end deletes the peer and both qdiscs
        for side in SIDES:
            _run(["ip", "-n", bed.namespaces[side], "link", "del", bed.devices[side]], check=False)
        _run(["ip", "link", "del", name], check=False)
    elif kind == "netns":
        _run(["ip", "netns", "del", name], check=False)
    elif kind == "mount":
        if _run(["umount", name], check=False).returncode != 0:
            _run(["umount", "-l", name], check=False)
    elif kind == "dir":
        shutil.rmtree(name, ignore_errors=True)


def leftovers(prefix: str) -> list[str]:
    """Namespaces, links, tmpfs mounts and work folders whose names start with `prefix`."""
    found = set(_run(["ip", "netns", "list"], check=False).stdout.split())
    found.update(word.rstrip(":").split("@")[0] for word in _run(["ip", "-o", "link"], check=False).stdout.split())
    found.update(line.split()[0] for line in Path("/proc/mounts").read_text().splitlines())
    found.update(p.name for p in Path(tempfile.gettempdir()).iterdir())
    names = {f"{prefix}{side[0]}{end}" for side in SIDES for end in ("", "0")} | {f"{prefix}shm"}
    return sorted(w for w in found if w in names or w.startswith(f"{prefix}_"))


def cleanup(prefix: str) -> list[str]:
    """Remove what a bed with `prefix` left after a SIGKILL (its processes must be ended by their PIDs first)."""
    if not prefix.startswith("sc") or len(prefix) < 3:
        raise TestbedError(f"not a test bed prefix: {prefix!r} (they look like sc12345)")
    for side in SIDES:
        _run(["ip", "link", "del", f"{prefix}{side[0]}0"], check=False)
        _run(["ip", "netns", "del", f"{prefix}{side[0]}"], check=False)
    for line in Path("/proc/mounts").read_text().splitlines():
        source, target = line.split()[:2]
        if source == f"{prefix}shm":
            _run(["umount", "-l", target], check=False)
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}_*"):
        shutil.rmtree(folder, ignore_errors=True)
    return leftovers(prefix)


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise TestbedError(f"`{' '.join(argv)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result

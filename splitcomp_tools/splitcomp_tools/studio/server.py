"""studio: serve the page and its JSON API with uvicorn (`ros2 run splitcomp_tools studio`, `make studio`).

It binds 127.0.0.1 unless --host says otherwise: the page uploads and runs models, so it is for
this machine (or a network you trust). The port is taken before anything starts, so a port in use
is one `error:` line; --port 0 takes a free one, and the first line printed is the page's address.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.cli import ToolParser, run_cli
from splitcomp_tools.studio.app import create_app
from splitcomp_tools.studio.config import DEFAULT_HOST, DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT, DEFAULT_WORKSPACE, Settings
from splitcomp_tools.studio.state import Studio

GRACEFUL_S = 3  # an open live stream must not keep Ctrl-C waiting


class _Server(uvicorn.Server):
    """uvicorn's server, which also ends the live streams as soon as it is told to stop (they never end by themselves)."""

    def __init__(self, config: uvicorn.Config, studio: Studio) -> None:
        super().__init__(config)
        self.studio = studio

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.studio.hub.close()
        super().handle_exit(sig, frame)


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="studio",
        description="The splitcomp studio: a web page (and JSON API) to upload a model, see its cuts, split it, "
        "calibrate, test images and download the bundle; with --ros also a live view of a running pipeline.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument(
        "--workspace",
        type=Path,
        default=DEFAULT_WORKSPACE,
        metavar="DIR",
        help=f"where uploads, bundles and results are kept (default {DEFAULT_WORKSPACE})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        metavar="N",
        help=f"largest upload accepted, in MB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="accept fully pickled PyTorch files; unpickling runs code from the file, so only for files you trust",
    )
    parser.add_argument("--ros", action="store_true", help="join the ROS graph for the Live view (needs rclpy)")
    parser.add_argument(
        "--namespace", default="", metavar="NS", help="the pipeline's namespace for Live (default none)"
    )
    return parser


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SplitcompError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host"
        ) from exc
    sock.listen(128)
    return sock


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise SplitcompError(f"--port must be 0..65535, got {args.port}")
    if not 0 < args.max_upload_mb <= 1 << 20:
        raise SplitcompError(f"--max-upload-mb must be above 0, got {args.max_upload_mb:g}")
    settings = Settings(
        workspace=args.workspace,
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
        trust_pickle=args.trust_pickle,
        ros=args.ros,
        namespace=args.namespace,
    )
    sock = _bind(args.host, args.port)
    studio = Studio(settings)
    try:
        app = create_app(settings, studio)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"studio: http://{shown}:{port}/ (workspace {studio.workspace.root})", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"warning: listening on {args.host}: anyone who reaches this port can upload and run models", flush=True
            )
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=GRACEFUL_S)
        _Server(config, studio).run(sockets=[sock])
    finally:
        studio.close()
        sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools studio`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

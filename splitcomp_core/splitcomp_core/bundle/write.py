"""Writing bundles: a bundle directory is either complete and verified, or absent.

Both writers fill a hidden temp directory beside the target, fsync every file and the directory, load
the result with the same reader the nodes use, and only then rename it into place (splitcomp_core.files),
so a crash, a full disk or an invalid manifest never leaves a half-written bundle where one is expected.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from splitcomp_core.bundle.manifest import Bundle, CutChoice, Manifest, QuantizationSpec
from splitcomp_core.bundle.model_files import compute_model_id
from splitcomp_core.bundle.multi_cut import multi_cut_manifest
from splitcomp_core.bundle.read import load_bundle
from splitcomp_core.bundle.schema import CUTS_DIR, FORMAT_VERSION, HEAD_FILE, LABELS_FILE, MANIFEST_FILE, TAIL_FILE
from splitcomp_core.bundle.validate import json_default
from splitcomp_core.errors import BundleError
from splitcomp_core.files import atomic_write_text, fsync_dir, replace_dir, write_durably


def write_bundle(
    out_dir: str | os.PathLike,
    head_bytes: bytes,
    tail_bytes: bytes,
    manifest: Manifest,
    labels: Sequence[str] | None = None,
    overwrite: bool = False,
    extra_files: Mapping[str, bytes] | None = None,
) -> Bundle:
    """Write and verify a bundle in a temp dir beside `out_dir`, then rename it into place.

    `model_id`, `format_version` and `labels_file` are set here from what is actually written. `extra_files`
    (plain names, such as the entropy tables a distilled bundle's codec needs) are written in the same step.
    """
    extras = dict(extra_files or {})
    for name in extras:
        if Path(name).name != name or name in (HEAD_FILE, TAIL_FILE, LABELS_FILE, MANIFEST_FILE):
            raise BundleError(f"extra bundle file '{name}' must be a plain name other than the bundle's own files")
    out = _output_dir(out_dir, overwrite)
    final = dataclasses.replace(
        manifest,
        format_version=FORMAT_VERSION,
        model_id=compute_model_id(head_bytes, tail_bytes),
        labels_file=LABELS_FILE if labels is not None else None,
    )

    def fill(tmp: Path) -> None:
        write_durably(tmp / HEAD_FILE, head_bytes)
        write_durably(tmp / TAIL_FILE, tail_bytes)
        if labels is not None:
            write_durably(tmp / LABELS_FILE, (json.dumps(list(labels), indent=1) + "\n").encode("utf-8"))
        for name, data in extras.items():
            write_durably(tmp / name, data)
        write_durably(tmp / MANIFEST_FILE, _manifest_text(final, str(out / MANIFEST_FILE)).encode("utf-8"))

    verified = _write_verified(out, fill)
    return dataclasses.replace(verified, path=out, head_path=out / HEAD_FILE, tail_path=out / TAIL_FILE)


def write_multi_cut_bundle(
    out_dir: str | os.PathLike,
    cuts: Sequence[CutChoice],
    default_cut: str,
    link: dict[str, Any],
    source: str = "",
    plan: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Copy each cut's single-cut bundle into cuts/<cut_id>/ beside a format_version 2 manifest, verified, atomically.

    `cuts` are in increasing order of bandwidth; each `bundle` is a loaded single-cut bundle (from `split`).
    """
    out = _output_dir(out_dir, overwrite)
    manifest = multi_cut_manifest(cuts, default_cut, link, source, plan)
    try:
        text = json.dumps(manifest, indent=2, default=json_default, allow_nan=False) + "\n"
    except ValueError as exc:
        raise BundleError(f"{out / MANIFEST_FILE}: {exc}; predictions must be finite numbers") from exc

    def fill(tmp: Path) -> None:
        for c in cuts:
            cut_dir = tmp / CUTS_DIR / c.cut_id
            cut_dir.mkdir(parents=True)
            labels = c.bundle.manifest.labels_file
            for name in [MANIFEST_FILE, HEAD_FILE, TAIL_FILE, *([labels] if labels else [])]:
                write_durably(cut_dir / name, (c.bundle.path / name).read_bytes())
            fsync_dir(cut_dir)
        write_durably(tmp / MANIFEST_FILE, text.encode("utf-8"))

    _write_verified(out, fill)
    return load_bundle(out)


def _write_verified(out: Path, fill: Callable[[Path], None]) -> Bundle:
    """Fill a temp dir beside `out`, make it durable, load it, then rename it onto `out`; the temp dir never stays.

    A BundleError names the files the user asked for (under `out`), not the temp dir they were checked in.
    """
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
    except OSError as exc:  # name what the user asked for, not the temp dir beside it
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    try:
        fill(tmp)
        fsync_dir(tmp)
        verified = load_bundle(tmp)
        replace_dir(tmp, out)
    except BundleError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BundleError(str(exc).replace(str(tmp), str(out))) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return verified


def _output_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Where a bundle may be written: refuse a file, an existing bundle (unless `overwrite`) or a foreign folder."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: exists and is not a directory; choose another output path")
    if out.exists() and not overwrite:
        raise BundleError(f"{out}: already exists; choose another output directory or pass overwrite=True")
    if out.exists() and not (out / MANIFEST_FILE).is_file() and any(out.iterdir()):
        raise BundleError(
            f"{out}: is a non-empty directory without {MANIFEST_FILE}; refusing to replace what is not a bundle"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def update_quantization(bundle_path: str | os.PathLike, quantization: QuantizationSpec) -> None:
    """Replace the manifest's quantization section (atomically); the models and model_id stay as they are."""
    atomic_write_text(*manifest_with_quantization(bundle_path, quantization))


def manifest_with_quantization(bundle_path: str | os.PathLike, quantization: QuantizationSpec) -> tuple[Path, str]:
    """The manifest's path and its validated text with `quantization` in it, for a caller that writes it
    together with other files (calibrate: its --json and --plot first, the manifest last)."""
    bundle = load_bundle(bundle_path)
    if bundle.cuts:
        raise BundleError(
            f"{bundle.path}: is a multi-cut bundle; calibrate one of its cuts instead: "
            + ", ".join(str(c.bundle.path) for c in bundle.cuts)
        )
    manifest_path = bundle.path / MANIFEST_FILE
    return manifest_path, _manifest_text(
        dataclasses.replace(bundle.manifest, quantization=quantization), str(manifest_path)
    )


def _manifest_text(manifest: Manifest, origin: str) -> str:
    """Serialise and re-validate, so no invalid manifest is ever written."""
    try:
        text = json.dumps(manifest.to_dict(), indent=2, default=json_default, allow_nan=False) + "\n"
    except ValueError as exc:
        raise BundleError(f"{origin}: {exc}; ranges and statistics must be finite (no NaN or infinity)") from exc
    Manifest.from_dict(json.loads(text), origin=origin)
    return text

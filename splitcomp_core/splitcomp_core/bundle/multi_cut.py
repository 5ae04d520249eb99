"""Multi-cut bundles (format_version 2): several cuts of one model, each chosen for a range of link rates.

The top-level manifest lists the cuts in increasing order of bandwidth; each cut is a complete single-cut
bundle in cuts/<cut_id>/. Its model_id is a digest of the cuts' model_ids, so adding, removing, reordering
or replacing a cut after `plan` is refused, and the ranges must tile [0, infinity) so that every rate has
exactly one cut. Writing is in write.py, beside the single-cut writer it shares its atomic steps with.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from splitcomp_core.bundle.manifest import Bundle, CutChoice
from splitcomp_core.bundle.schema import CUTS_DIR, MANIFEST_FILE, MULTI_CUT_FORMAT_VERSION
from splitcomp_core.bundle.validate import check_finite, check_schema
from splitcomp_core.errors import BundleError

_ENTRY_KEYS = ("cut_id", "model_id", "bandwidth_mbps")  # a cut entry's own keys; the rest is what `plan` recorded


def multi_cut_model_id(model_ids: Sequence[str]) -> str:
    """The digest of a multi-cut bundle: its cuts' model_ids in order, so adding, removing or moving one changes it."""
    digest = hashlib.sha256()
    for model_id in model_ids:
        digest.update(model_id.encode("ascii") + b"\n")
    return "sha256:" + digest.hexdigest()


def multi_cut_manifest(
    cuts: Sequence[CutChoice], default_cut: str, link: dict[str, Any], source: str, plan: dict[str, Any] | None
) -> dict[str, Any]:
    """The format_version 2 manifest listing `cuts` (in increasing order of bandwidth), as `plan --out` writes it."""
    entries = [
        {
            "cut_id": c.cut_id,
            "model_id": c.bundle.manifest.model_id,
            "bandwidth_mbps": {"min": c.min_mbps, "max": c.max_mbps},
            **c.info,
        }
        for c in cuts
    ]
    manifest: dict[str, Any] = {
        "format_version": MULTI_CUT_FORMAT_VERSION,
        "model_id": multi_cut_model_id([e["model_id"] for e in entries]),
        "source": source,
        "default_cut": default_cut,
        "cuts": entries,
        "link": link,
        "created_by": "splitcomp_tools plan",
    }
    if plan is not None:
        manifest["plan"] = plan
    return manifest


def load_multi_cut(root: Path, data: dict[str, Any], load_cut: Callable[[Path], Bundle]) -> Bundle:
    """Validate the top-level manifest, load every cut as a single-cut bundle, and check they are one model's cuts.

    `load_cut` is read.load_bundle, passed in so that the reader can hand format_version 2 to this module.
    """
    origin = str(root / MANIFEST_FILE)
    _check_manifest(data, origin)
    choices = []
    for entry in data["cuts"]:
        cut_dir = root / CUTS_DIR / entry["cut_id"]
        sub_manifest = cut_dir / MANIFEST_FILE
        sub = load_cut(cut_dir)
        if sub.cuts:
            raise BundleError(f"{sub_manifest}: a cut of a multi-cut bundle must be a single-cut bundle (format 1)")
        if sub.manifest.model_id != entry["model_id"]:
            raise BundleError(
                f"{sub_manifest}: model_id {sub.manifest.model_id} is not the {entry['model_id']} that {origin} "
                f"lists for cut {entry['cut_id']!r}; the cut was replaced after plan (re-run plan --out)"
            )
        info = {k: v for k, v in entry.items() if k not in _ENTRY_KEYS}
        band = entry["bandwidth_mbps"]
        choices.append(
            CutChoice(entry["cut_id"], dataclasses.replace(sub, cut_id=entry["cut_id"]), band["min"], band["max"], info)
        )
    _check_same_model(choices)
    default = next(c.bundle for c in choices if c.cut_id == data["default_cut"])
    return dataclasses.replace(default, path=root, cuts=choices, link=dict(data["link"]))


def _check_manifest(data: dict[str, Any], origin: str) -> None:
    """Schema, unique cut ids, a default among them, the model_id digest, and ranges that tile the rates."""
    check_schema(data, origin)
    check_finite(data, origin)
    entries = data["cuts"]
    ids = [e["cut_id"] for e in entries]
    if len(set(ids)) != len(ids):
        raise BundleError(f"{origin}: cuts: cut_id values must be unique, got {ids}")
    if data["default_cut"] not in ids:
        raise BundleError(f"{origin}: default_cut {data['default_cut']!r} is not one of the cuts {ids}")
    expected_id = multi_cut_model_id([e["model_id"] for e in entries])
    if data["model_id"] != expected_id:
        raise BundleError(
            f"{origin}: model_id {data['model_id']} is not the digest of the cuts' model_ids ({expected_id}); "
            f"the manifest was edited (re-run plan --out)"
        )
    _check_ranges(entries, origin)


def _check_ranges(entries: Sequence[dict[str, Any]], origin: str) -> None:
    """The cuts' bandwidth ranges must tile [0, infinity) in order, so every rate has exactly one cut."""
    edge = 0.0
    for i, entry in enumerate(entries):
        low, high = entry["bandwidth_mbps"]["min"], entry["bandwidth_mbps"]["max"]
        last = i == len(entries) - 1
        if low != edge or (high is None) != last or (high is not None and high <= low):
            raise BundleError(
                f"{origin}: cuts[{i}].bandwidth_mbps: the ranges must follow each other from 0 with no gap, in "
                f"increasing order, the last one open (max null); got min {low}, max {high} after {edge}"
            )
        edge = high if high is not None else edge


def _check_same_model(choices: Sequence[CutChoice]) -> None:
    """Every cut must take the same images and give the same classes, or switching would change the answers."""
    first = choices[0].bundle
    for choice in choices[1:]:
        other = choice.bundle
        for what, a, b in (
            ("input", first.manifest.input, other.manifest.input),
            ("output", first.manifest.output.kind, other.manifest.output.kind),
            ("labels", first.labels, other.labels),
        ):
            if a != b:
                raise BundleError(
                    f"{other.path / MANIFEST_FILE}: its {what} differs from cut {choices[0].cut_id!r}'s; every cut "
                    f"of a multi-cut bundle must be a split of the same model"
                )

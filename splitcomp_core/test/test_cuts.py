"""HeadCuts and TailCuts: every cut's pipelines at once, per-cut encoder defaults, and the cut a message names."""

import dataclasses

import numpy as np
import pytest

from splitcomp_core.bundle import QuantizationSpec
from splitcomp_core.cuts import HeadCuts, TailCuts, switcher_for
from splitcomp_core.errors import CodecError
from splitcomp_core.link import MESSAGE_FRAMING_BYTES, link_bytes
from splitcomp_core.tail import FeaturesRejected

FRAME = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)


def test_each_cut_answers_its_own_features(tiny_multi_cut_bundle):
    heads, tails = (
        HeadCuts(tiny_multi_cut_bundle, providers=["cpu"]),
        TailCuts(tiny_multi_cut_bundle, providers=["cpu"]),
    )
    answers = {}
    for choice in tiny_multi_cut_bundle.cuts:
        encoded = heads(choice.cut_id, FRAME)
        answers[choice.cut_id] = tails(choice.cut_id, choice.bundle.manifest.model_id, encoded.tensors)
    assert answers["feat"].feature_bytes > answers["pooled"].feature_bytes
    with pytest.raises(FeaturesRejected) as info:
        tails("nope", tiny_multi_cut_bundle.manifest.model_id, heads("feat", FRAME).tensors)
    assert info.value.reason == "cut_id"
    with pytest.raises(FeaturesRejected) as info:  # a cut's features under another cut's name
        tails("pooled", tiny_multi_cut_bundle.cuts[0].bundle.manifest.model_id, heads("feat", FRAME).tensors)
    assert info.value.reason == "model_id"


def test_a_single_cut_bundle_is_the_cut_with_an_empty_id(tiny_bundle):
    heads, tails = HeadCuts(tiny_bundle, providers=["cpu"]), TailCuts(tiny_bundle, providers=["cpu"])
    assert list(heads.pipelines) == list(tails.pipelines) == [""]
    assert tails("", tiny_bundle.manifest.model_id, heads("", FRAME).tensors).results
    assert switcher_for(tiny_bundle).next_cut(0.0) == ""


def test_user_settings_apply_over_every_cuts_own_defaults(tiny_multi_cut_bundle):
    pooled = tiny_multi_cut_bundle.cuts[1]
    own = dataclasses.replace(
        pooled,
        bundle=dataclasses.replace(
            pooled.bundle,
            manifest=dataclasses.replace(
                pooled.bundle.manifest,
                quantization=QuantizationSpec(
                    bits=8, mode="calibrated", codec="zstd", calibrated=pooled.bundle.manifest.quantization.calibrated
                ),
            ),
        ),
    )
    heads = HeadCuts(tiny_multi_cut_bundle, providers=["cpu"])
    heads.pipelines["pooled"].bundle = own.bundle  # as if plan had chosen 8-bit zstd for this cut
    assert heads.configure({}) == []
    assert (heads.pipelines["feat"].config.bits, heads.pipelines["pooled"].config.bits) == (4, 8)
    assert heads.pipelines["pooled"].config.codec == "zstd"
    heads.configure({"codec": "lz4"})
    assert {p.config.codec for p in heads.pipelines.values()} == {"lz4"}
    assert heads.pipelines["pooled"].config.bits == 8  # only what was set changes
    with pytest.raises(CodecError):
        heads.configure({"bits": 9})
    assert heads.pipelines["feat"].config.bits == 4 and heads.overrides == {"codec": "lz4"}
    with pytest.raises(ValueError, match="not encoder settings"):
        heads.configure({"providers": ["cpu"]})


def test_the_switcher_starts_on_the_lowest_rate_cut_with_the_planned_bytes(tiny_multi_cut_bundle):
    switcher = switcher_for(tiny_multi_cut_bundle)
    # planned payloads, as on the link: a bundle that does not say its framing gets what plan counts by default
    assert switcher.framing_bytes == MESSAGE_FRAMING_BYTES
    assert switcher.current == "feat" and switcher.bytes == {"feat": link_bytes(1024.0), "pooled": link_bytes(4.0)}
    assert switcher.overhead_ms == 2.0

"""bench pipeline's head options: inter-frame coding and a preloaded clip reach the nodes as asked, nothing else."""

import pytest

from splitcomp_tools import bench
from splitcomp_tools.run.bench_pipeline import _plan, build_parser, head_params


def test_keyframe_interval_codec_and_preload_reach_the_nodes():
    argv = ["--source", "video:bikes", "--keyframe-interval", "10", "--preload", "250", "--codec", "entropy"]
    args = build_parser(bench.DEMO).parse_args(argv)
    assert head_params(args) == {"codec": "entropy"}
    (config,) = _plan(args)  # one configuration: its own settings on top
    assert config.head_params() == {
        "keyframe_interval": 10,
        "reference": "acknowledged",
        "features_reliability": "reliable",
    }
    assert args.preload == 250 and args.source == "video:bikes"
    defaults = build_parser(bench.DEMO).parse_args([])
    assert head_params(defaults) == {} and defaults.preload == 30


@pytest.mark.parametrize("extra", [["--keyframe-interval", "-1"], ["--keyframe-interval", "x"], ["--preload", "0"]])
def test_bad_head_options_exit_2(extra, capsys):
    assert bench.main(["pipeline", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and extra[0] in err

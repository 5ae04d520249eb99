"""Param records declare a node's parameters and print its --help from one list."""

from splitcomp_ros.encoder_params import ENCODER_PARAM_SPECS
from splitcomp_ros.node_support import RUNTIME_PARAMS, NodeHelp, Param


def test_help_lists_every_parameter_with_its_type_default_range_and_choices():
    params = (
        *RUNTIME_PARAMS,
        *ENCODER_PARAM_SPECS,
        Param("rate", 2.5, "How often.", float_range=(0.1, 10.0)),
        Param("mode", "a", "Which.", read_only=True, choices=("a", "b")),
    )
    text = NodeHelp("pkg", "exe", "Does things.", params).text()
    assert text.startswith("usage: ros2 run pkg exe [--ros-args -p NAME:=VALUE")
    for param in params:
        assert f"  {param.name} (" in text
    assert "rate (double, 0.1..10.0), default 2.5" in text
    assert "mode (string, read-only), default 'a'" in text and "One of: a, b." in text
    assert "providers (string array, read-only), default [cuda, cpu]" in text
    assert "bits (integer), default the bundle's" in text


def test_a_descriptor_carries_the_same_description_and_range():
    param = Param("top_k", 5, "How many.", int_range=(1, 1000), choices=None)
    descriptor = param.descriptor()
    assert descriptor.description == "How many." and not descriptor.read_only
    assert (descriptor.integer_range[0].from_value, descriptor.integer_range[0].to_value) == (1, 1000)

"""bundle.batch: whether a tail takes any batch, and the command that makes a bundle whose tail does."""

from splitcomp_core.bundle import dynamic_batch_command, takes_any_batch


def test_a_bundle_says_whether_its_tail_batches_and_how_to_make_one_that_does(
    tiny_bundle, tiny_batch_bundle, tiny_multi_cut_bundle
):
    assert takes_any_batch(tiny_batch_bundle) and not takes_any_batch(tiny_bundle)
    assert not takes_any_batch(tiny_multi_cut_bundle)
    assert dynamic_batch_command(tiny_bundle) == f"split test --at feat --out {tiny_bundle.path}-batch --dynamic-batch"
    command = dynamic_batch_command(tiny_multi_cut_bundle)
    assert command.startswith("plan test ") and "--dynamic-batch" in command

"""The synthetic shape generator: deterministic, every class drawable, camera-like sizes, balanced."""

import time

import numpy as np
import pytest

from splitcomp_tools.frames.shapes import CLASS_NAMES, ShapeGenerator


def test_there_are_at_least_ten_distinct_classes():
    assert len(CLASS_NAMES) >= 10
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)


def test_same_seed_gives_identical_images_and_labels():
    first_images, first_labels = ShapeGenerator(7).batch(24)
    second_images, second_labels = ShapeGenerator(7).batch(24)
    np.testing.assert_array_equal(first_images, second_images)
    np.testing.assert_array_equal(first_labels, second_labels)


def test_different_seeds_give_different_images():
    a, _ = ShapeGenerator(1).batch(12)
    b, _ = ShapeGenerator(2).batch(12)
    assert not np.array_equal(a, b)
    # Not just a few pixels: the scenes themselves differ.
    assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() > 10


def test_consecutive_samples_differ():
    generator = ShapeGenerator(3)
    first, _ = generator.sample(0)
    second, _ = generator.sample(0)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("label", range(len(CLASS_NAMES)))
def test_every_class_is_producible_as_a_visible_uint8_rgb_image(label):
    image, got = ShapeGenerator(11).sample(label)
    assert got == label
    assert image.shape == (128, 128, 3)
    assert image.dtype == np.uint8
    assert image.std() > 10, "the scene should show more than a flat colour"


def test_unlabelled_samples_cover_all_classes():
    generator = ShapeGenerator(5)
    labels = {generator.sample()[1] for _ in range(200)}
    assert labels == set(range(len(CLASS_NAMES)))


def test_batch_labels_are_balanced_and_shuffled():
    images, labels = ShapeGenerator(9).batch(125)
    assert images.shape == (125, 128, 128, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.shape == (125,)
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    assert counts.max() - counts.min() <= 1
    assert counts.sum() == 125
    assert not np.array_equal(labels[:12], np.arange(12)), "labels should come shuffled"


def test_batch_with_explicit_labels():
    wanted = [3, 3, 0, 11]
    _, labels = ShapeGenerator(4).batch(4, labels=wanted)
    assert labels.tolist() == wanted


@pytest.mark.parametrize("size, shape", [((640, 480), (480, 640, 3)), ((96, 160), (160, 96, 3)), (200, (200, 200, 3))])
def test_camera_frame_sizes(size, shape):
    generator = ShapeGenerator(0, size=size)
    assert (generator.width, generator.height) == (shape[1], shape[0])
    image, _ = generator.sample()
    assert image.shape == shape and image.dtype == np.uint8


def test_object_stays_in_the_central_square_of_a_wide_frame():
    # A centre crop to a square model input must keep the object. Large circles add a second
    # colour to the central square only, so the image varies much more there than in the side
    # bands (which hold background, lighting, noise and a little clutter).
    images, _ = ShapeGenerator(21, size=(320, 128)).batch(12, labels=[0] * 12)
    band = (320 - 128) // 2
    centre = images[:, :, band : band + 128].astype(np.float32)
    sides = np.concatenate([images[:, :, :band], images[:, :, band + 128 :]], axis=2).astype(np.float32)
    assert np.mean(centre.std(axis=(1, 2))) > 1.5 * np.mean(sides.std(axis=(1, 2)))


@pytest.mark.parametrize("size", [0, 16, (640,), (640, 31), "128", 12.5, True])
def test_bad_size_is_refused_with_a_clear_message(size):
    with pytest.raises(ValueError, match="size"):
        ShapeGenerator(0, size=size)


@pytest.mark.parametrize("label", [-1, len(CLASS_NAMES), 2.0, "circle"])
def test_bad_label_is_refused_with_a_clear_message(label):
    with pytest.raises(ValueError, match=r"label must be an int in 0\.\.11"):
        ShapeGenerator(0).sample(label)


def test_bad_batch_arguments_are_refused():
    with pytest.raises(ValueError, match="n must be"):
        ShapeGenerator(0).batch(-1)
    with pytest.raises(ValueError, match="exactly n=3"):
        ShapeGenerator(0).batch(3, labels=[1, 2])


def test_generation_is_fast_enough_for_training_and_calibration():
    generator = ShapeGenerator(0)
    generator.batch(20)
    start = time.perf_counter()
    generator.batch(300)
    rate = 300 / (time.perf_counter() - start)
    # The requirement is 500 images/s on an idle box; the bar here leaves room for a loaded CI runner.
    assert rate > 250, f"{rate:.0f} images/s"

"""Frames from rosbag2 recordings written here with rosbags' Writer (sqlite3 and mcap storage)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from splitcomp_core.errors import ImageFormatError, SplitcompError
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.rosbag import RosbagSource

TYPES = get_typestore(Stores.ROS2_JAZZY)
Image = TYPES.types["sensor_msgs/msg/Image"]
CompressedImage = TYPES.types["sensor_msgs/msg/CompressedImage"]
String = TYPES.types["std_msgs/msg/String"]
Header = TYPES.types["std_msgs/msg/Header"]
Time = TYPES.types["builtin_interfaces/msg/Time"]

HEIGHT, WIDTH = 6, 8


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def _image(pixels: np.ndarray, encoding: str, padding: int = 0) -> object:
    """An Image message whose rows carry `padding` junk bytes after the pixels, as some drivers send."""
    rows = pixels.reshape(HEIGHT, -1)
    padded = np.concatenate([rows, np.full((HEIGHT, padding), 0xAB, dtype=np.uint8)], axis=1)
    return Image(
        header=Header(stamp=Time(sec=1, nanosec=0), frame_id="camera"),
        height=HEIGHT,
        width=WIDTH,
        encoding=encoding,
        is_bigendian=0,
        step=padded.shape[1],
        data=padded.ravel(),
    )


def _frames_and_messages() -> tuple[list[np.ndarray], list[object]]:
    """Expected RGB frames, and the same frames as Image messages in several encodings."""
    frames = [_rgb(i) for i in range(4)]
    gray = cv2.cvtColor(frames[2], cv2.COLOR_RGB2GRAY)
    frames[2] = np.repeat(gray[:, :, None], 3, axis=2)
    messages = [
        _image(frames[0], "rgb8"),
        _image(np.ascontiguousarray(frames[1][:, :, ::-1]), "bgr8", padding=5),
        _image(gray, "mono8", padding=3),
        _image(np.dstack([frames[3], np.full((HEIGHT, WIDTH), 7, np.uint8)]), "rgba8"),
    ]
    return frames, messages


def _write_bag(path: Path, storage: StoragePlugin, images: list[object], compressed: list[bytes] = ()) -> Path:
    with Writer(path, version=9, storage_plugin=storage) as writer:
        camera = writer.add_connection("/camera/image_raw", Image.__msgtype__, typestore=TYPES)
        packed = writer.add_connection("/camera/image_raw/compressed", CompressedImage.__msgtype__, typestore=TYPES)
        chatter = writer.add_connection("/chatter", String.__msgtype__, typestore=TYPES)
        for i, msg in enumerate(images):
            stamp = (i + 1) * 1_000_000
            writer.write(camera, stamp, TYPES.serialize_cdr(msg, Image.__msgtype__))
            writer.write(chatter, stamp + 1, TYPES.serialize_cdr(String(data=f"frame {i}"), String.__msgtype__))
        for i, data in enumerate(compressed):
            msg = CompressedImage(
                header=Header(stamp=Time(sec=2, nanosec=i), frame_id="camera"),
                format="png",
                data=np.frombuffer(data, dtype=np.uint8),
            )
            writer.write(packed, 10_000_000 + i, TYPES.serialize_cdr(msg, CompressedImage.__msgtype__))
    return path


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_reads_raw_images_in_every_encoding_as_rgb(tmp_path, storage):
    frames, messages = _frames_and_messages()
    bag = _write_bag(tmp_path / "bag", storage, messages)
    source = open_source(str(bag), topic="/camera/image_raw")
    assert isinstance(source, RosbagSource)
    got = list(source.frames())
    assert len(got) == len(frames)
    for expected, frame in zip(frames, got):
        assert frame.dtype == np.uint8 and frame.shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(frame, expected)
    assert source.read() is None
    source.rewind()
    np.testing.assert_array_equal(source.read(), frames[0])
    source.close()


def test_reads_compressed_images_and_accepts_a_topic_without_leading_slash(tmp_path):
    frames = [_rgb(10 + i) for i in range(3)]
    pngs = [cv2.imencode(".png", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
    bag = _write_bag(tmp_path / "bag", StoragePlugin.MCAP, [], pngs)
    source = RosbagSource(bag, "camera/image_raw/compressed")
    assert source.topic == "/camera/image_raw/compressed"
    for expected, frame in zip(frames, source.frames(limit=5)):
        np.testing.assert_array_equal(frame, expected)
    source.close()


@pytest.mark.parametrize(
    "topic, message",
    [
        ("", "needs --topic"),
        ("/camera/depth", "no topic '/camera/depth'"),
        ("/chatter", "holds std_msgs/msg/String, not images"),
    ],
)
def test_a_missing_or_wrong_topic_lists_the_image_topics(tmp_path, topic, message):
    bag = _write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, _frames_and_messages()[1][:1])
    with pytest.raises(SplitcompError) as caught:
        open_source(str(bag), topic=topic)
    text = str(caught.value)
    assert message in text
    assert "image topics in this bag: /camera/image_raw, /camera/image_raw/compressed" in text
    assert "/chatter," not in text and not text.endswith("/chatter")


def test_an_unsupported_encoding_names_the_message(tmp_path):
    depth = Image(
        header=Header(stamp=Time(sec=1, nanosec=0), frame_id="camera"),
        height=HEIGHT,
        width=WIDTH,
        encoding="16UC1",
        is_bigendian=0,
        step=2 * WIDTH,
        data=np.zeros(2 * WIDTH * HEIGHT, np.uint8),
    )
    bag = _write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, [_frames_and_messages()[1][0], depth])
    source = RosbagSource(bag, "/camera/image_raw")
    assert source.read() is not None
    with pytest.raises(ImageFormatError, match=r"message 1 on /camera/image_raw: .*16UC1"):
        source.read()
    source.close()


def test_a_truncated_image_is_refused(tmp_path):
    short = _image(_rgb(0), "rgb8")
    short.data = short.data[:-4]
    bag = _write_bag(tmp_path / "bag", StoragePlugin.SQLITE3, [short])
    source = RosbagSource(bag, "/camera/image_raw")
    with pytest.raises(ImageFormatError, match=r"data has 140 bytes but step\*height = 24\*6 = 144"):
        source.read()
    source.close()


def test_a_broken_bag_is_a_clear_error(tmp_path):
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9}\n")
    with pytest.raises(SplitcompError, match="cannot read this rosbag2"):
        open_source(str(bag), topic="/camera/image_raw")

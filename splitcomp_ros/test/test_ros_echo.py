from splitcomp_msgs.msg import Classification, ClassScore
from splitcomp_ros.echo import message_to_yaml


def test_classification_prints_like_ros2_topic_echo():
    msg = Classification(sequence=7, model_id="sha256:ab", feature_bytes=512, head_ms=1.5)
    msg.header.stamp.sec = 3
    msg.header.frame_id = "camera"
    msg.results = [ClassScore(class_id=2, label="star", score=0.75), ClassScore(class_id=0, label="circle", score=0.25)]
    text = message_to_yaml(msg)
    assert text.splitlines()[:9] == [
        "header:",
        "  stamp:",
        "    sec: 3",
        "    nanosec: 0",
        "  frame_id: camera",
        "sequence: 7",
        "model_id: 'sha256:ab'",
        "results:",
        "- class_id: 2",
    ]
    assert "  label: star" in text and "  score: 0.75" in text and text.endswith("latency_ms: 0.0\ncut_id: ''\n---")


def test_detections_print_each_box_with_its_landmarks():
    from splitcomp_msgs.msg import Detection, Detections

    face = Detection(class_id=0, label="face", score=0.75, x=10.5, y=20.0, width=30.0, height=40.0)
    face.keypoints = [1.5, 2.5, 3.5, 4.5]
    msg = Detections(sequence=4, feature_bytes=9000, cut_id="cut3", detections=[face])
    lines = message_to_yaml(msg).splitlines()
    start = lines.index("detections:")
    assert lines[start + 1 :] == [
        "- class_id: 0",
        "  label: face",
        "  score: 0.75",
        "  x: 10.5",
        "  y: 20.0",
        "  width: 30.0",
        "  height: 40.0",
        "  keypoints:",
        "  - 1.5",
        "  - 2.5",
        "  - 3.5",
        "  - 4.5",
        "---",
    ]
    assert "cut_id: cut3" in lines

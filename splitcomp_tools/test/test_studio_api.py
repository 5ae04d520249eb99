"""The studio's JSON API through FastAPI's test client: every call, every refusal, and the whole flow.

The flow is a new user's: upload the demo model, split it, calibrate, classify images, download.
What comes back is checked against the tools and the deployed pipelines themselves: the cuts
against `analyze --json`, the unsplit answer against the full model in ONNX Runtime, and the
downloaded archive by loading it as head_node and tail_node do.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import socket
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.postprocess import softmax
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.runtime import InferenceSession
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.demo.models import DEFAULT_MODEL, DEMO_LABELS, DEMO_MODEL
from splitcomp_tools.frames.generator import GeneratorSource
from splitcomp_tools.studio import catalog
from splitcomp_tools.studio.app import create_app
from splitcomp_tools.studio.config import Settings
from splitcomp_tools.studio.routers.page import static_dir

CUT = "/stage2/block1/relu/Relu_output_0"  # where `make demo` splits
CROP = {"height": 128, "width": 128, "resize": "center_crop", "crop_size": 128}


def make_client(workspace: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(workspace=workspace, **settings)))


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path / "studio") as c:
        yield c


def upload(client: TestClient, data: bytes, filename: str = "model.onnx", **fields):
    return client.post("/api/models", files={"file": (filename, data)}, data=fields)


def png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def onnx_reading(location: str) -> bytes:
    """An ONNX model whose weights claim to be in the file `location` (external data)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "432")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"]), helper.make_node("GlobalAveragePool", ["y"], ["out"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 1, 1])],
        initializer=[weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for width x height pixels, with almost no pixel data: decoding it would allocate them all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def wait_for(client: TestClient, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        seen.append(job["progress"]["fraction"])
        if job["status"] != "running":
            assert seen == sorted(seen), f"progress went backwards: {seen}"
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_the_page_is_served_from_the_installed_package(client):
    installed = static_dir()
    assert "share/splitcomp_tools/studio" in str(installed)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == (installed / "index.html").read_text()
    assert set(re.findall(r'(?:src|href)="([^"]+)"', page.text)) == {
        "/static/studio.css",
        "/static/studio.js",
        "/openapi.json",
        "#",
    }
    for name in ("studio.js", "studio.css"):
        served = client.get(f"/static/{name}")
        assert served.status_code == 200 and served.text == (installed / name).read_text()
        # nothing is fetched from elsewhere: the only URL is the SVG namespace
        assert re.findall(r"https?://[^\s\"']+", served.text) in ([], ["http://www.w3.org/2000/svg"])
    assert client.get("/static/../app.py").status_code == 404
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        "/api/models",
        "/api/models/{model_id}",
        "/api/models/{model_id}/split",
        "/api/bundles/{bundle_id}/calibrate",
        "/api/jobs/{job_id}",
        "/api/bundles/{bundle_id}/classify",
        "/api/bundles/{bundle_id}/download",
        "/api/live",
    } <= paths


def test_status_and_the_shipped_models(client):
    status = client.get("/api/status").json()
    assert status["ros"] is False and "generator" in status["frame_sources"]
    assert status["bits"] == [1, 2, 3, 4, 5, 6, 7, 8, 16, 32]
    models = client.get("/api/models").json()["models"]
    assert [m["id"] for m in models if m["shipped"]] == list(catalog.shipped())  # the page selects the first
    demo = client.get("/api/models/demo").json()
    assert demo["has_labels"] and demo["defaults"]["resize"] == "center_crop"
    assert CUT in [c["tensors"][0] for c in demo["cuts"]]


def test_an_upload_gives_the_cuts_analyze_json_prints(client, tmp_path):
    printed = subprocess.run(
        [sys.executable, "-m", "splitcomp_tools.analyze", str(DEMO_MODEL), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    created = upload(client, DEMO_MODEL.read_bytes(), "../../shapes.onnx")
    assert created.status_code == 201, created.text
    model = created.json()
    assert model["cuts"] == json.loads(printed.stdout)
    assert model["name"] == "shapes.onnx" and model["inputs"] == {"image": [1, 3, 128, 128]}
    assert client.get(f"/api/models/{model['id']}").json()["cuts"] == model["cuts"]
    wider = client.get(f"/api/models/{model['id']}?max_tensors=2").json()["cuts"]
    assert len(wider) > len(model["cuts"]) and max(len(c["tensors"]) for c in wider) == 2
    listed = client.get("/api/models").json()["models"]
    assert {"id": model["id"], "name": "shapes.onnx", "shipped": False}.items() <= listed[-1].items()
    workspace = tmp_path / "studio"
    assert not (tmp_path / "shapes.onnx").exists()
    assert files_under(workspace / "models") == {f"{model['id']}/model.onnx", f"{model['id']}/meta.json"}


def test_an_onnx_model_of_dynamic_size_is_analysed_at_the_given_one(client, build_onnx):
    from onnx import helper

    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    nodes = [conv, helper.make_node("Relu", ["y"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["out"])]
    weights = {"w": np.ones((4, 3, 3, 3), np.float32)}
    model = build_onnx(nodes, {"x": [1, 3, "h", "w"]}, {"out": [1, 4, 1, 1]}, weights).SerializeToString()
    refused = upload(client, model, "dynamic.onnx")
    assert refused.status_code == 400 and "dynamic" in refused.json()["detail"].lower(), refused.text
    made = upload(client, model, "dynamic.onnx", input_shape="1,3,20,24")
    assert made.status_code == 201, made.text
    assert made.json()["inputs"] == {"x": [1, 3, 20, 24]} and made.json()["defaults"]["height"] == 20
    assert upload(client, model, "dynamic.onnx", input_shape="1,3,-1,24").status_code == 400


def test_a_torchscript_upload_is_exported_and_a_pickle_needs_trust(tmp_path):
    import torch
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    scripted, pickled = io.BytesIO(), io.BytesIO()
    torch.jit.save(torch.jit.script(net.eval()), scripted)
    torch.save(net, pickled)
    with make_client(tmp_path / "a") as client:
        model = upload(client, scripted.getvalue(), "net.pt", input_shape="1,3,16,16")
        assert model.status_code == 201, model.text
        assert model.json()["format"] == "torchscript" and model.json()["inputs"] == {"input": [1, 3, 16, 16]}
        no_shape = upload(client, scripted.getvalue(), "net.pt")
        assert no_shape.status_code == 400 and "input_shape" in no_shape.json()["detail"]
        refused = upload(client, pickled.getvalue(), "pickled.pt", input_shape="1,3,16,16")
        assert refused.status_code == 400
        assert "--trust-pickle" in refused.json()["detail"] and refused.json()["detail"].startswith("pickled.pt")
        assert len(client.get("/api/models").json()["models"]) == len(catalog.shipped()) + 1  # and the upload
    with make_client(tmp_path / "b", trust_pickle=True) as client:
        trusted = upload(client, pickled.getvalue(), "pickled.pt", input_shape="1,3,16,16")
        assert trusted.status_code == 201, trusted.text


def test_refusals_are_json_4xx_and_the_server_keeps_serving(tmp_path):
    with make_client(tmp_path / "studio", max_upload_bytes=1 << 20) as client:
        not_a_model = upload(client, b"hello, this is text", "notes.txt")
        assert not_a_model.status_code == 400 and not_a_model.json()["detail"].startswith(
            "notes.txt: not an ONNX model"
        )
        assert str(tmp_path) not in not_a_model.json()["detail"]
        outside = upload(client, onnx_reading("../../../../etc/hostname"), "ext.onnx")
        assert outside.status_code == 400 and "points outside" in outside.json()["detail"]
        too_big = upload(client, DEMO_MODEL.read_bytes())  # 2.6 MB against a 1 MB cap, Content-Length known
        assert too_big.status_code == 413 and "--max-upload-mb" in too_big.json()["detail"]

        def chunks():
            yield b"--b\r\nContent-Disposition: form-data; name=file; filename=m.onnx\r\n\r\n"
            for _ in range(64):
                yield b"\0" * (64 << 10)

        streamed = client.post(
            "/api/models", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert streamed.status_code == 413, streamed.text
        garbled = client.post(
            "/api/models", content=b"no parts here", headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert garbled.status_code == 400
        assert client.post("/api/models", json={"file": "x"}).status_code == 415
        for path in ("/api/models/nope", "/api/bundles/0123456789ab", "/api/jobs/nope", "/api/bundles/../x/download"):
            missing = client.get(path)
            assert missing.status_code == 404 and missing.json()["detail"], path
        bad_cut = client.post("/api/models/demo/split", json={"at": ["/stage2/block1/relu/no_such_tensor"]})
        assert bad_cut.status_code == 400 and "not a valid cut" in bad_cut.json()["detail"]
        assert CUT in bad_cut.json()["detail"]  # the nearest valid cuts are named
        inside_block = client.post("/api/models/demo/split", json={"at": ["/stage2/block1/conv1/Conv_output_0"]})
        assert inside_block.status_code == 400
        bad_body = client.post("/api/models/demo/split", json={"at": [CUT], "preprocessing": {"mean": [0.5]}})
        assert bad_body.status_code == 422 and bad_body.json()["detail"].startswith("preprocessing.mean")
        assert client.get("/api/models/demo?max_tensors=9").status_code == 422
        assert client.get("/api/live").status_code == 409
        assert client.get("/api/status").status_code == 200
        workspace = tmp_path / "studio"
        assert not files_under(workspace / "tmp") and not files_under(workspace / "models")
        assert not list((workspace / "bundles").iterdir())


def test_test_images_are_checked_before_they_are_decoded(client):
    bundle = client.post("/api/models/demo/split", json={"at": [CUT]}).json()["bundle_id"]
    url = f"/api/bundles/{bundle}/classify"
    text = client.post(url, files={"images": ("a.png", b"not an image")})
    assert text.status_code == 415 and text.json()["detail"].startswith("a.png: not an image")
    for side in (20000, 7000):  # PNGs of 69 bytes that claim 400 and 49 million pixels
        refused = client.post(url, files={"images": ("huge.png", png_claiming(side, side))})
        assert refused.status_code == 413 and "pixels" in refused.json()["detail"], refused.text
    too_many = client.post(url, files=[("images", (f"{k}.png", b"x")) for k in range(17)])
    assert too_many.status_code == 413
    assert client.post(url, data={"sample": "generator", "bits": "9"}).status_code == 400
    assert client.post(url, data={"sample": "generator", "count": "999"}).status_code == 400
    assert client.post(url, data={"sample": "elsewhere"}).status_code == 400


def test_the_catalog_leads_with_the_model_make_demo_runs_and_the_toy_follows():
    """The page opens on the first entry; `make demo` runs demo.models.DEFAULT_MODEL, so the two cannot drift."""
    lead, toy = catalog.SHIPPED
    assert lead.id == lead.export == DEFAULT_MODEL and "`make demo` runs" in lead.description
    assert toy.onnx == DEMO_MODEL and "fast tests" in toy.description and "make demo" not in toy.description
    assert next(iter(catalog.shipped())) == DEFAULT_MODEL  # its wheels are pinned in requirements/tools.txt


def test_shipped_models_are_data_and_need_their_source(tmp_path, monkeypatch):
    from splitcomp_tools.studio import catalog

    demo = next(m for m in catalog.SHIPPED if m.id == "demo")  # the toy: installed, nothing to export
    present = dataclasses.replace(demo, id="demo_again", name="present", requires=("json",))
    absent = dataclasses.replace(demo, id="absent", name="absent", requires=("splitcomp_no_such_module",))
    monkeypatch.setattr(catalog, "SHIPPED", (*catalog.SHIPPED, present, absent))
    with make_client(tmp_path / "studio") as client:
        listed = [m["id"] for m in client.get("/api/models").json()["models"]]
        assert "demo_again" in listed and "absent" not in listed
        assert client.get("/api/models/demo_again").json()["name"] == "present"
        assert client.get("/api/models/absent").status_code == 404


def test_calibrate_on_an_uploaded_video(client, tmp_path):
    video = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for frame in GeneratorSource(160, 120, seed=2).frames(8):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    bundle = client.post("/api/models/demo/split", json={"at": [CUT]}).json()["bundle_id"]
    job = client.post(
        f"/api/bundles/{bundle}/calibrate",
        data={"source": "upload", "count": "6"},
        files={"files": ("my drive.avi", video.read_bytes())},
    )
    assert job.status_code == 202, job.text
    done = wait_for(client, job.json()["job_id"])
    assert done["status"] == "done", done["error"]
    assert done["result"]["frames"] == 6 and done["result"]["images"] == "upload"


def test_calibrate_judges_on_other_frames_with_the_agreement_figures(client):
    bundle = client.post("/api/models/demo/split", json={"at": [CUT]}).json()["bundle_id"]
    url = f"/api/bundles/{bundle}/calibrate"
    wrong = client.post(url, json={"count": 4, "eval_source": "generator,/etc"})
    assert wrong.status_code == 400 and "eval_source" in wrong.json()["detail"]
    assert client.post(url, json={"count": 4, "confidence": 1.5}).status_code == 422
    body = {"source": "generator", "count": 6, "eval_source": "generator", "eval_count": 5, "confidence": 0.4}
    body["video_codecs"] = "h264"
    job = client.post(url, json=body)
    assert job.status_code == 202, job.text
    done = wait_for(client, job.json()["job_id"])
    assert done["status"] == "done", done["error"]
    result = done["result"]
    assert (result["frames"], result["eval_frames"], result["eval_images"]) == (6, 5, "generator")
    assert result["confidence"] == 0.4 and "not independent" in result["dependence_note"]
    jpeg = next(r for r in result["results"] if r["method"] == "jpeg_full")
    assert jpeg["stats"]["frames"] == 5 and jpeg["stats"]["confident_frames"] == result["confident_frames"]
    h264 = [r for r in result["results"] if r["method"] == "h264_full"]  # the studio's table shows them beside JPEG
    assert [r["quality"] for r in h264] == [18, 23, 28, 33] and all(r["bytes_per_frame"] > 0 for r in h264)
    assert not [r for r in result["results"] if r["method"].startswith("h265")]  # only the codecs asked for
    assert (
        h264[0]["label"] == "H.264 of the camera frame, key frame every 30"
        and jpeg["label"] == "jpeg of the full frame"
    )
    assert all(r["stats"]["frames"] == 5 for r in result["results"])
    assert "top-1 confident [95 % CI]" in result["table"]


def test_calibration_jobs_are_bounded(tmp_path):
    with make_client(tmp_path / "studio", max_active_jobs=1) as client:
        first, second = (client.post("/api/models/demo/split", json={"at": [CUT]}).json()["bundle_id"] for _ in "ab")
        running = client.post(f"/api/bundles/{first}/calibrate", json={"count": 2000})
        assert running.status_code == 202
        busy = client.post(f"/api/bundles/{second}/calibrate", json={"count": 10})
        assert busy.status_code == 429 and "retry" in busy.json()["detail"]
        assert client.delete(f"/api/bundles/{first}").status_code == 409
        again = client.post(f"/api/bundles/{first}/calibrate", json={"count": 10})
        assert again.status_code == 409 and "still running" in again.json()["detail"]
    with make_client(tmp_path / "other") as client:
        bundle = client.post("/api/models/demo/split", json={"at": [CUT]}).json()["bundle_id"]
        url = f"/api/bundles/{bundle}/calibrate"
        assert client.post(url, json={"count": 0}).status_code == 422
        assert client.post(url, json={"count": 100_000}).status_code == 422
        refused = client.post(url, json={"video_codecs": "h264,vp9"})
        assert refused.status_code == 422 and "h264, h265, or none" in refused.text
        assert client.post(url, json={"source": "upload"}).status_code == 400
        assert client.post(url, json={"source": "/etc"}).status_code == 400
        assert client.post(url, data={"source": "upload"}).status_code == 400  # no files
        assert client.post(url, content=b"{", headers={"content-type": "application/json"}).status_code == 400
    # leaving the client stops the server, and with it the worker process of the running job


def test_upload_split_calibrate_classify_download(tmp_path):
    frames = list(GeneratorSource(640, 480, seed=11).frames(3))
    with make_client(tmp_path / "studio") as client:
        model = upload(client, DEMO_MODEL.read_bytes(), "shapes.onnx").json()
        split = client.post(
            f"/api/models/{model['id']}/split",
            json={"at": [CUT], "preprocessing": CROP, "labels": {"file": DEMO_LABELS.read_text()}},
        )
        assert split.status_code == 201, split.text
        made = split.json()
        assert made["manifest"]["cut"][0]["name"] == CUT and made["manifest"]["input"]["resize"] == "center_crop"
        assert made["verification"]["max_abs_diff"] < 1e-4
        bundle = made["bundle_id"]

        images = [("images", (f"frame{k}.png", png(f))) for k, f in enumerate(frames[:2])]
        calibration = client.post(
            f"/api/bundles/{bundle}/calibrate",
            data={"source": "upload", "count": "2", "bits": "4"},
            files=[("files", (f"cal{k}.png", png(f))) for k, f in enumerate(frames)],
        )
        assert calibration.status_code == 202, calibration.text
        done = wait_for(client, calibration.json()["job_id"])
        assert done["status"] == "done" and done["result"]["frames"] == 2, done["error"]
        kept = tmp_path / "studio" / "bundles" / bundle / "inputs"
        assert sorted(p.name for p in kept.iterdir()) == ["0000.png", "0001.png", "0002.png"]
        job = client.post(
            f"/api/bundles/{bundle}/calibrate",
            json={"source": "generator", "count": 40, "bits": 4, "video_codecs": "none"},
        )
        assert job.status_code == 202
        result = wait_for(client, job.json()["job_id"])
        assert result["status"] == "done", result["error"]
        rows = result["result"]["results"]
        assert result["result"]["frames"] == 40 and result["progress"]["fraction"] == 1.0
        assert {r["method"] for r in rows} >= {"clip", "per_tensor_mse", "raw", "jpeg", "jpeg_full"}
        assert not [r for r in rows if r["method"].startswith(("h264", "h265"))]  # video_codecs none
        assert str(tmp_path) not in result["result"]["table"]
        plot = client.get(result["result"]["plot_url"])
        assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
        about = client.get(f"/api/bundles/{bundle}").json()
        assert about["manifest"]["quantization"]["mode"] == "calibrated" and about["calibration"]["frames"] == 40

        classified = client.post(
            f"/api/bundles/{bundle}/classify",
            data={"bits": "4", "quantization": "calibrated", "codec": "zstd"},
            files=images,
        )
        assert classified.status_code == 200, classified.text
        answer = classified.json()
        archive = client.get(f"/api/bundles/{bundle}/download")
        assert archive.status_code == 200
        overlays = [client.get(row["overlay_url"]) for row in answer["images"]]

    agreement = answer["agreement"]
    agreeing = sum(row["agree"] for row in answer["images"])
    assert (agreement["split"]["agree"], agreement["split"]["frames"]) == (agreeing, len(answer["images"]))
    assert agreement["jpeg95"]["frames"] == 2 and "not independent" in agreement["dependence_note"]
    full = InferenceSession(DEMO_MODEL, ["cpu"])
    manifest = load_bundle(tmp_path / "studio" / "bundles" / bundle / "bundle").manifest
    spec, output = manifest.input, manifest.output.name
    assert manifest.output.kind == "logits"
    preprocess = Preprocessor(spec)
    labels = json.loads(DEMO_LABELS.read_text())
    for row, frame, shown in zip(answer["images"], frames, overlays):
        expected = softmax(full.run({spec.name: preprocess(frame)})[output][0])
        best = np.argsort(expected)[::-1][:5]
        assert [r["class_id"] for r in row["unsplit"]] == best.tolist()
        assert [r["label"] for r in row["unsplit"]] == [labels[i] for i in best]
        assert np.allclose([r["score"] for r in row["unsplit"]], expected[best], atol=1e-5)
        assert len(row["split"]) == 5 and row["agree"] == (row["split"][0]["class_id"] == best[0])
        assert 0 < row["feature_bytes"] < row["float32_bytes"] == 4 * 32 * 16 * 16
        _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert row["jpeg95_bytes"] == jpeg.size
        jpeg_input = preprocess(cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        assert row["jpeg95"][0]["class_id"] == int(np.argmax(full.run({spec.name: jpeg_input})[output][0]))
        assert min(row["head_ms"], row["tail_ms"], row["encode_ms"]) > 0
        drawn = cv2.imdecode(np.frombuffer(shown.content, np.uint8), cv2.IMREAD_COLOR)
        assert drawn.shape == frame.shape and not np.array_equal(drawn[:, :, ::-1], frame)

    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        members = tar.getmembers()
        assert all(m.isfile() and m.name.startswith(f"bundle-{bundle}/") for m in members)
        tar.extractall(tmp_path / "unpacked", filter="data")
    unpacked = load_bundle(tmp_path / "unpacked" / f"bundle-{bundle}")  # what head_node and tail_node load
    tail = TailPipeline(unpacked, ["cpu"])
    exact = HeadPipeline(unpacked, EncoderConfig(bits=32), ["cpu"])
    four_bits = HeadPipeline(unpacked, providers=["cpu"])  # the bundle's own defaults: calibrated, 4 bits
    assert four_bits.config.mode == "calibrated" and four_bits.config.bits == 4
    agree = 0
    for frame in GeneratorSource(640, 480, seed=12).frames(20):
        reference = softmax(full.run({spec.name: preprocess(frame)})[output][0])
        got = tail(unpacked.manifest.model_id, exact(frame).tensors).results
        assert got[0][0] == int(np.argmax(reference)) and abs(got[0][2] - reference.max()) < 1e-5
        agree += tail(unpacked.manifest.model_id, four_bits(frame).tensors).results[0][0] == got[0][0]
    assert agree >= 18


def test_the_workspace_must_be_the_studios(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = subprocess.run(
        [sys.executable, "-m", "splitcomp_tools.studio", "--workspace", str(tmp_path / "mine"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith("error:") and "workspace" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_port_in_use_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "splitcomp_tools.studio", "--port", str(port), "--workspace", str(tmp_path / "w")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2 and result.stderr.startswith("error: cannot listen on 127.0.0.1")
    assert "Traceback" not in result.stderr


def test_split_request_with_dynamic_batch_makes_a_batchable_bundle(tmp_path):
    """A batch-1 export: the plain split keeps batch 1, `dynamic_batch` records -1 from input to output."""
    from conformance_models import export_family

    static = export_family("residual", "torchscript", False, tmp_path / "export").path
    with make_client(tmp_path / "studio") as client:
        model = upload(client, static.read_bytes(), "residual.onnx").json()
        cut = "/layer1/Relu_1_output_0"
        plain = client.post(f"/api/models/{model['id']}/split", json={"at": [cut]})
        batchable = client.post(f"/api/models/{model['id']}/split", json={"at": [cut], "dynamic_batch": True})
        assert plain.status_code == batchable.status_code == 201, batchable.text
        assert plain.json()["manifest"]["cut"][0]["shape"] == [1, 8, 32, 32]
        manifest = batchable.json()["manifest"]
        assert manifest["cut"][0]["shape"] == [-1, 8, 32, 32]
        assert manifest["input"]["shape"][0] == manifest["output"]["shape"][0] == -1

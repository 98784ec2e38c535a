"""benchmarks.bench_topdown on a tiny setting: every figure present, positive and consistent.

No timing is asserted (the machine may be shared); only the bookkeeping is checked.
"""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import bench_topdown

TINY = [
    "--quick", "--iters", "1", "--warmup", "0", "--threads", "1", "--width", "8", "--image-size", "64x48",
    "--batch-size", "2", "--peak-batch", "1", "--peak-reps", "1", "--data-images", "2", "--data-passes", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    res = bench_topdown.main([*TINY, "--json", str(out)])
    res["_json_path"] = out
    return res


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_peak_fields(result):
    peak = result["peak"]
    assert _positive(peak["fp32_gflops"]) and _positive(peak["bf16_gflops"])
    assert {(r["dtype"], r["memory_format"]) for r in peak["runs"]} == {
        (d, m) for d in ("fp32", "bf16") for m in ("channels_last", "contiguous")
    }
    for r in peak["runs"]:
        assert _positive(r["gflops"]) and _positive(r["best_s"])
        assert r["gflops"] == pytest.approx(r["gflop"] / r["best_s"])
        n, c, h, w = r["shape"]
        assert r["gflop"] == pytest.approx(2 * n * c * c * 9 * h * w / 1e9)
    assert peak["fp32_gflops"] == max(r["gflops"] for r in peak["runs"] if r["dtype"] == "fp32")
    assert peak["bf16_gflops"] == max(r["gflops"] for r in peak["runs"] if r["dtype"] == "bf16")


def test_training_fields_and_percentages(result):
    peak, model, train = result["peak"], result["model"], result["train"]
    assert model["train_gflop_per_image"] == pytest.approx(3 * model["forward_gflops_per_image"])
    assert model["reference_gflops_per_image"] is None  # width 8 is not the reference configuration
    variants = train["variants"]
    assert set(variants) == set(bench_topdown.VARIANTS) - set(bench_topdown.COMPILED)  # compiled ones are opt-in
    batch = result["config"]["batch_size"]
    for name, v in variants.items():
        channels_last, bf16, _ = bench_topdown.VARIANTS[name]
        assert (v["channels_last"], v["bf16"]) == (channels_last, bf16)
        assert len(v["times_s"]) == result["config"]["iters"] == 1
        for key in (
            "median_step_s",
            "images_per_s",
            "achieved_gflops",
            "pct_of_fp32_peak",
            "cpu_utilisation",
            "final_loss",
        ):
            assert _positive(v[key]), (name, key, v[key])
        assert v["images_per_s"] == pytest.approx(batch / v["median_step_s"])
        assert v["achieved_gflops"] == pytest.approx(model["train_gflop_per_image"] * v["images_per_s"])
        assert v["pct_of_fp32_peak"] == pytest.approx(100 * v["achieved_gflops"] / peak["fp32_gflops"])
        if bf16:
            assert v["pct_of_bf16_peak"] == pytest.approx(100 * v["achieved_gflops"] / peak["bf16_gflops"])
        else:
            assert v["pct_of_bf16_peak"] is None
        assert v["speedup_vs_fp32"] == pytest.approx(v["images_per_s"] / variants["fp32"]["images_per_s"])
    assert train["speedup"] == pytest.approx(variants["bf16_cl"]["images_per_s"] / variants["fp32"]["images_per_s"])
    assert train["speedup_from_min_step"] == pytest.approx(
        variants["fp32"]["min_step_s"] / variants["bf16_cl"]["min_step_s"]
    )
    assert train["aim_speedup"] == 1.5
    assert train["aim_met"] == (train["speedup"] >= 1.5)
    assert train["best_variant"] in variants
    assert "bf16" in train["hardware_note"]


def test_data_fields(result):
    data = result["data"]
    assert data["num_images"] == 2
    assert 4 <= data["num_records"] <= 6  # 2-3 people per image
    assert data["samples_timed"] == data["num_records"]
    for key in ("samples_per_s_per_worker", "ms_per_sample", "decode_only_per_s", "mean_jpeg_kb"):
        assert _positive(data[key]), key
    assert data["ms_per_sample"] == pytest.approx(1000 / data["samples_per_s_per_worker"])
    stages = data["stage_ms_per_sample"]
    assert set(stages) == {"decode", "warp", "encode", "normalize", "other"}
    assert all(_positive(stages[k]) for k in ("decode", "warp", "encode", "normalize"))
    assert data["decode_only_per_s"] == pytest.approx(1000 / stages["decode"])
    assert data["aim_samples_per_s"] == 400
    assert data["aim_met"] == (data["samples_per_s_per_worker"] >= 400)
    assert _positive(data["full_decode_samples_per_s"]) and 0 <= data["reduced_fraction"] <= 1
    assert _positive(data["collate_ms_per_sample"])
    assert data["reduced_decode_speedup"] == pytest.approx(
        data["samples_per_s_per_worker"] / data["full_decode_samples_per_s"]
    )


def test_json_written_and_complete(result):
    written = json.loads(result["_json_path"].read_text())
    assert set(written) == {k for k in result if not k.startswith("_")}
    assert written["train"]["variants"]["bf16_cl"]["pct_of_fp32_peak"] == pytest.approx(
        result["train"]["variants"]["bf16_cl"]["pct_of_fp32_peak"]
    )
    cfg = written["config"]
    assert (cfg["width"], cfg["image_size"], cfg["threads"], cfg["quick"]) == (8, [64, 48], 1, True)
    assert isinstance(written["cpu"]["flags"]["avx512_bf16"], bool)


def test_synthetic_coco_file(tmp_path):
    ann = bench_topdown.write_synthetic_coco(tmp_path, num_images=1, keypoint_info=bench_topdown.COCO17, seed=3)
    data = json.loads(ann.read_text())
    (image,) = data["images"]
    assert (image["width"], image["height"]) == (640, 480)
    assert (tmp_path / "images" / image["file_name"]).is_file()
    assert 2 <= len(data["annotations"]) <= 3
    for a in data["annotations"]:
        assert len(a["keypoints"]) == 51 and a["iscrowd"] == 0 and a["area"] > 0
        assert a["num_keypoints"] == sum(v > 0 for v in a["keypoints"][2::3])


@pytest.mark.parametrize("bad", [["--image-size", "65x48"], ["--variants", "fp64"], ["--iters", "0"]])
def test_rejects_bad_arguments(bad):
    with pytest.raises(SystemExit):
        bench_topdown.main(bad)


def test_stage_timers_are_removed(result):
    import cv2

    from src.datasets import topdown as topdown_dataset

    assert topdown_dataset.cv2 is cv2

    class Codec:
        def encode(self, x):
            return x

    class Dataset:
        codec = Codec()

        def read_bgr_for_crop(self, x):
            return x

        def image_tensor(self, x):
            return x

    dataset, stages = Dataset(), dict.fromkeys(bench_topdown._STAGES, 0.0)
    with bench_topdown._stage_timers(dataset, stages):
        assert [dataset.read_bgr_for_crop(1), dataset.image_tensor(2), dataset.codec.encode(3)] == [1, 2, 3]
        assert topdown_dataset.cv2 is not cv2
    assert stages["decode"] > 0 and stages["normalize"] > 0 and stages["encode"] > 0
    assert topdown_dataset.cv2 is cv2 and not vars(dataset) and not vars(dataset.codec)

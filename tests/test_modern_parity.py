"""RTMPose (SimCC) and ViTPose (UDP heatmaps) through the rest of the project, at tiny widths:
ONNX export and the exported predictor agree with PyTorch, mmpose-style checkpoint files convert
and evaluate (and a file of the other family is refused with its keys), a codec whose sizes differ
from the network's outputs is refused at construction, and the pictures of both codecs draw.

Weights are drawn per tensor with a fan-in scale (`moderate_weights_`): mmpose's init leaves the
tiny RTMPose's logits near 1e-8, where any absolute bound would hold trivially; drawn this way they
reach about 10 (ViTPose's heatmaps about 0.7) and vary from image to image, so the 1e-4 bound on
the raw outputs and the people the predictors find are real checks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from src.convert import convert
from src.eval import evaluate
from src.tasks.loading import load_task
from tests.helpers import TINY_MODELS, TINY_SYNTHETIC, compose_run

TINY_RTMPOSE = [
    "model=rtmpose_t",
    "++model.net.size=null",
    "++model.net.deepen_factor=0.167",
    "++model.net.widen_factor=0.125",
    "++model.net.hidden_dims=32",
    "++model.net.s=16",
]
TINY_VITPOSE = [
    "model=vitpose_s",
    "++model.net.embed_dims=32",
    "++model.net.num_layers=2",
    "++model.net.num_heads=2",
    "++model.net.feedforward_channels=64",
    "model.param_groups.num_layers=2",
]
MODELS = {"rtmpose": TINY_RTMPOSE, "vitpose": TINY_VITPOSE, "vitpose_simple": [*TINY_VITPOSE, "model.net.head=simple"]}
#: Person boxes [x, y, w, h, score] in the 160 x 128 test images.
BOXES = np.array([[20, 10, 60, 100, 0.9], [70, 20, 80, 100, 0.8]], np.float32)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("modern")


def moderate_weights_(net: torch.nn.Module, seed: int) -> None:
    """Matrices and kernels N(0, 1.5^2 / fan_in), norm and scale weights U[0.8, 1.2), biases N(0, 0.01):
    the signal keeps its size through the depth, so that the outputs depend on the image (with larger
    biases the tiny RTMPose's logits are the same for every image to 1e-7, and the flip test's
    symmetric average of the nose's x vector ties its argmax)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 1.5 / math.sqrt(p[0].numel()))
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.01)
            else:
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=g))


def build(name: str, work: Path, *extra: str, seed: int = 0):
    cfg = compose_run("train", [*MODELS[name], *extra], work / f"run_{name}", work / "data")
    task = instantiate(cfg.model, _recursive_=False)
    moderate_weights_(task.net, seed)
    return task.eval()


@pytest.fixture(scope="module")
def tasks(work) -> dict:
    return {name: build(name, work) for name in MODELS}


@pytest.fixture(scope="module")
def exported(work, tasks) -> dict[str, Path]:
    from src.export import export

    return {name: export(task, work / f"{name}.onnx", file_format="onnx") for name, task in tasks.items()}


def images(count: int = 3, seed: int = 0) -> list[np.ndarray]:
    """RGB 160 x 128 images: smooth noise with a bright figure-like blob, different per image."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        small = rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)
        image = np.asarray(torch.nn.functional.interpolate(
            torch.from_numpy(small).permute(2, 0, 1)[None].float(), size=(128, 160), mode="bilinear"
        )[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8))  # fmt: skip
        image[30 + 5 * i : 90, 50 : 70 + 10 * i] = 230
        out.append(np.ascontiguousarray(image))
    return out


# --------------------------------------------------------------------------- export and prediction


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_export_parity(name, tasks, exported):
    """onnxruntime gives the network's raw outputs (SimCC x / y logits, UDP heatmaps) within 1e-4."""
    from src.export import _Outputs, check_onnx_parity, example_input

    task = tasks[name]
    batch = torch.randn(3, *example_input(task).shape[1:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outputs = _Outputs(task.net)(batch)
    assert len(outputs) == (2 if name == "rtmpose" else 1)  # SimCC x and y logits; heatmaps
    assert max(float(o.abs().max()) for o in outputs) > 0.2  # moderate outputs: the bound below means something
    assert check_onnx_parity(task, exported[name], batch) < 1e-4


@pytest.mark.parametrize("name", ["rtmpose", "vitpose_simple"])
def test_exported_predictor_finds_the_same_people(name, tasks, exported):
    """The Predictor on the ONNX file (its sidecar rebuilds the codec, flip test included) gives the
    PyTorch task's people: keypoints within 1e-3 px, scores within 1e-4.

    ViTPose with the simple head (bilinear upsampling): with random weights the classic head's
    deconvolutions give checkerboard maps on which DARK-UDP's Newton step is ill-conditioned (output
    noise of 1e-6 moves keypoints by pixels there, 4e-4 px with the simple head)."""
    from src.inference import Predictor

    pictures = images()
    boxes = [BOXES] * len(pictures)
    reference = Predictor(tasks[name])(pictures, boxes)
    got = Predictor.load(backend="onnx", model_file=exported[name])(pictures, boxes)
    assert [len(p) for p in reference] == [len(p) for p in got] and sum(len(p) for p in reference) > 0
    for ref, new in zip(reference, got):
        np.testing.assert_allclose(new.keypoints, ref.keypoints, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(new.scores, ref.scores, atol=1e-4, err_msg=name)
    first = reference[0].keypoints
    assert not np.allclose(first, reference[1].keypoints)  # the people depend on the images


# --------------------------------------------------------------------------- mmpose checkpoints


def write_mmpose_file(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """A checkpoint as mmpose 1.x saves one after training with EMA: numpy arrays in ``meta``, the
    averaged weights in ``state_dict`` (mmengine swaps them in before saving) and the raw weights in
    ``ema_state_dict`` under ``module.`` with a ``steps`` counter."""
    meta = {
        "epoch": 420,
        "iter": 1000,
        "mmengine_version": "0.10.7",
        "dataset_meta": {
            "dataset_name": "coco",
            "flip_indices": [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15],
            "sigmas": np.linspace(0.025, 0.107, 17).astype(np.float32),
            "joint_weights": np.ones(17, np.float32),
            "num_keypoints": np.int64(17),
        },
        "seed": np.int64(21),
    }
    raw = {f"module.{k}": v + 0.5 if v.is_floating_point() else v for k, v in state.items()}
    torch.save({"meta": meta, "state_dict": state, "ema_state_dict": {"steps": torch.tensor(1000), **raw}}, path)
    return path


@pytest.mark.parametrize("name", ["rtmpose", "vitpose"])
def test_mmpose_files_convert_and_evaluate(name, work):
    """`src.convert` takes the averaged weights of an mmpose file exactly; src.eval reads the result."""
    source = build(name, work, seed=7).net
    state = {k: v.clone() for k, v in source.state_dict().items()}
    official = write_mmpose_file(work / f"{name}_mmpose.pth", state)
    out = work / f"{name}_converted.ckpt"
    convert(compose_run("convert", [*MODELS[name], f"official={official}", f"out={out}"], work / "c", work / "data"))
    net = load_task(out).net.state_dict()
    assert net.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(net[key], value), key
    metrics = evaluate(compose_run("eval", [f"ckpt_path={out}", *TINY_SYNTHETIC], work / f"eval_{name}", work / "data"))
    assert 0.0 <= metrics["val/AP"] <= 1.0 and metrics["flip_test"] is True


def test_a_file_of_the_other_family_is_refused_with_its_keys(work):
    """An RTMPose file given to a ViTPose config (and the reverse): the keys each side lacks and the
    shape that differs are listed."""
    rtmpose = write_mmpose_file(work / "rtm_for_vit.pth", build("rtmpose", work).net.state_dict())
    with pytest.raises(ValueError) as err:
        convert(compose_run("convert", [*TINY_VITPOSE, f"official={rtmpose}"], work / "r1", work / "data"))
    message = str(err.value)
    assert "rtm_for_vit.pth does not match ViTPose (43 tensors)" in message
    assert "41 missing from the file: backbone.pos_embed; backbone.patch_embed.projection.weight" in message
    assert "216 not in the model: backbone.stem.0.conv.weight" in message
    assert "head.final_layer.weight: file (17, 128, 7, 7) vs model (17, 256, 1, 1)" in message
    vitpose = write_mmpose_file(work / "vit_for_rtm.pth", build("vitpose", work).net.state_dict())
    with pytest.raises(ValueError, match=r"does not match RTMPose .*216 missing from the file: backbone\.stem\."):
        convert(compose_run("convert", [*TINY_RTMPOSE, f"official={vitpose}"], work / "r2", work / "data"))


# --------------------------------------------------------------------------- codec and network sizes


def refusal(work: Path, overrides: list[str]) -> str:
    cfg = compose_run("train", overrides, work / "bad", work / "data")
    with pytest.raises(Exception) as err:  # noqa: PT011 - Hydra wraps the ValueError
        instantiate(cfg.model, _recursive_=False)
    cause = err.value.__cause__ or err.value
    assert isinstance(cause, ValueError), cause
    return str(cause)


def test_codec_sizes_that_disagree_with_the_network_are_refused(work):
    """Named both: the network's output shapes and the codec (with its sizes)."""
    msg = refusal(work, [*TINY_MODELS["topdown"], "model.codec.heatmap_size=[10,10]"])
    assert "outputs (1, 17, 16, 12)" in msg and "heatmap_size=(10, 10)" in msg and "(N, 17, 10, 10)" in msg
    # RTMPose's net takes the codec's ratio by interpolation; set apart, they disagree
    msg = refusal(work, [*TINY_RTMPOSE, "model.codec.simcc_split_ratio=3.0", "model.net.simcc_split_ratio=2.0"])
    assert "outputs [(1, 17, 384), (1, 17, 512)]" in msg and "simcc_split_ratio=3.0" in msg
    assert "[(N, 17, 576), (N, 17, 768)]" in msg
    msg = refusal(work, [*TINY_VITPOSE, "model.codec.heatmap_size=[40,40]"])
    assert "outputs (1, 17, 64, 48)" in msg and "UDPHeatmap(" in msg and "(N, 17, 40, 40)" in msg
    # a network built for another crop size than the codec's: the head's own check names its size
    msg = refusal(work, [*TINY_RTMPOSE, "model.net.input_size=[192,256]", "model.codec.input_size=[144,192]"])
    assert "built for 6x8" in msg and "input 192x256" in msg and "got 5x6" in msg


def test_interpolated_split_ratio_follows_the_codec(work):
    task = build("rtmpose", work, "model.codec.simcc_split_ratio=3.0")
    with torch.no_grad():
        x, y = task.net(torch.zeros(1, 3, 256, 192))
    assert (x.shape[-1], y.shape[-1]) == (576, 768) == (task.codec.simcc_split_ratio * 192, 3.0 * 256)


# --------------------------------------------------------------------------- pictures


@pytest.mark.parametrize("name", ["rtmpose", "vitpose"])
def test_prediction_pictures(name, tasks):
    """SimCC and UDP pictures: the crop with the skeleton beside the codec's picture of the output."""
    from src.visualization.pictures import denormalize

    task = tasks[name]
    g = torch.Generator().manual_seed(3)
    items = [{"image": torch.randn(3, 256, 192, generator=g)} for _ in range(2)]
    pictures = task.prediction_pictures(items)
    assert len(pictures) == 2
    for item, picture in zip(items, pictures):
        assert picture.dtype == np.uint8 and picture.shape == (256, 2 * 192, 3)
        crop = denormalize(item["image"])[:, :, ::-1]  # RGB -> BGR, as the pictures are
        assert np.abs(picture[:, 192:].astype(int) - crop).mean() > 5  # the codec's overlay is drawn
    assert not np.array_equal(pictures[0], pictures[1])

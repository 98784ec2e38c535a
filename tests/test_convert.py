"""src.convert: official checkpoint files of every family, in their own containers, become
checkpoints of this project that load, evaluate and keep every tensor; mismatches are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from src.convert import convert
from src.eval import evaluate
from src.tasks.loading import load_task
from tests.helpers import TINY_H36M_ROOT, TINY_POSENET, compose_run

REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

#: family -> (reference state_dict file, recipe that holds that network, container of the official file)
FORMATS = {
    "hrnet": ("pose_hrnet_w32_256x192.json", "hrnet_w32_256x192_coco", "bare"),
    "simplebaseline": ("pose_resnet_50_256x192.json", "simplebaseline_r50_256x192_coco", "bare"),
    "hourglass": ("hourglass_hg8_mpii.json", "hourglass_hg8_256x256_mpii", "pytorch_pose"),
    "higherhrnet": ("higher_hrnet_w32_512.json", "higherhrnet_w32_512_coco", "bare"),
    "posenet": ("posenet_resnet50_18j_human36m.json", "posenet_r50_h36m_p2", "posenet_snapshot"),
}


def _random_state(reference: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the official shapes (integer BN counters where the key says so)."""
    g = torch.Generator().manual_seed(seed)
    return {
        key: torch.zeros(shape, dtype=torch.long)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=g)
        for key, shape in reference.items()
    }


def _write_official(path: Path, state: dict[str, torch.Tensor], container: str) -> None:
    """The file as each official repository writes it."""
    prefixed = {f"module.{k}": v for k, v in state.items()}
    if container == "bare":  # HRNet, SimpleBaseline, HigherHRNet model zoo files
        torch.save(state, path)
    elif container == "pytorch_pose":  # bearpaw/pytorch-pose checkpoint.pth.tar
        torch.save({"epoch": 220, "arch": "hg", "state_dict": prefixed, "best_acc": 0.88, "optimizer": {}}, path)
    elif container == "posenet_snapshot":  # 3DMPPE snapshot_24.pth.tar
        torch.save({"epoch": 24, "network": prefixed, "optimizer": {}}, path)
    else:
        raise ValueError(container)


@pytest.mark.parametrize("family", sorted(FORMATS))
def test_official_files_of_every_family_convert_exactly(family, tmp_path):
    name, recipe, container = FORMATS[family]
    path = REFERENCE_DIR / name
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    reference = json.loads(path.read_text())["state_dict"]
    state = _random_state(reference)
    official = tmp_path / f"{family}.pth"
    _write_official(official, state, container)
    del state
    out = tmp_path / "converted.ckpt"
    convert(compose_run("convert", [f"experiment={recipe}", f"official={official}", f"out={out}"], tmp_path, tmp_path))
    official.unlink()  # the converted checkpoint stands alone
    task = load_task(out)
    again = _random_state(reference)
    net = task.net.state_dict()
    assert set(net) == set(reference)
    for key, value in again.items():
        assert torch.equal(net[key], value), key
    assert task.hparams.initialised_from == str(official)


def test_converted_checkpoint_evaluates_and_mismatches_are_refused(tmp_path):
    """A tiny PoseNet in snapshot form: converted, evaluated like a trained checkpoint; the same file
    given for another joint count lists the shapes that differ."""
    tiny = ["model=posenet", *TINY_H36M_ROOT, *TINY_POSENET]
    from hydra.utils import instantiate

    source = instantiate(compose_run("train", tiny, tmp_path / "a", tmp_path / "data").model.net)
    official = tmp_path / "snapshot_24.pth.tar"
    _write_official(official, source.state_dict(), "posenet_snapshot")
    out = convert(compose_run("convert", [*tiny, f"official={official}"], tmp_path / "c", tmp_path / "data"))
    assert out == tmp_path / "c" / "checkpoints" / "converted.ckpt"
    metrics = evaluate(compose_run("eval", [f"ckpt_path={out}", *TINY_H36M_ROOT], tmp_path / "e", tmp_path / "data"))
    assert metrics["val/MPJPE"] > 0

    with pytest.raises(ValueError, match=r"shape: head\.final_layer\.weight: file \(288, 16, 1, 1\) vs model"):
        convert(
            compose_run(
                "convert", [*tiny, f"official={official}", "model.codec.depth_dim=8"], tmp_path / "d", tmp_path / "data"
            )
        )
    with pytest.raises(ValueError, match="needs official=PATH"):
        convert(compose_run("convert", tiny, tmp_path / "f", tmp_path / "data"))

"""Official checkpoints load with strict key and shape checks, whatever their container."""

from __future__ import annotations

import pytest
import torch

from src.models.posenet import PoseNet
from src.models.weights import load_official_weights, read_official_state_dict


def _tiny(num_joints: int = 18) -> PoseNet:
    return PoseNet(depth=18, base_width=8, layers=(1, 1, 1, 1), num_joints=num_joints, depth_dim=4, deconv_channels=8)


def test_posenet_snapshot_with_module_prefix_loads_exactly(tmp_path):
    source = _tiny()
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / "snapshot_24.pth.tar"
    optimizer = torch.optim.Adam(source.parameters()).state_dict()
    torch.save({"epoch": 24, "network": state, "optimizer": optimizer}, path)
    target = _tiny()
    load_official_weights(target, path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_bare_state_dict_loads(tmp_path):
    source = _tiny()
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    assert set(read_official_state_dict(path)) == set(source.state_dict())


def test_mismatches_are_listed(tmp_path):
    path = tmp_path / "snapshot.pth.tar"
    torch.save({"network": {f"module.{k}": v for k, v in _tiny(num_joints=21).state_dict().items()}}, path)
    with pytest.raises(
        ValueError, match=r"shape: head\.final_layer\.weight: file \(84, 8, 1, 1\) vs model \(72, 8, 1, 1\)"
    ):
        load_official_weights(_tiny(), path)
    state = _tiny().state_dict()
    state.pop("head.final_layer.bias")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=r"1 missing from the file: head\.final_layer\.bias.*1 not in the model: extra"
    ):
        load_official_weights(_tiny(), path)


def test_missing_file_and_no_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="official checkpoint not found"):
        read_official_state_dict(tmp_path / "absent.pth")
    path = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(ValueError, match="no state_dict found"):
        read_official_state_dict(path)


def test_task_starts_from_official_weights_and_its_checkpoint_stands_alone(tmp_path):
    """`model.official_weights`: loaded strictly at construction; the saved checkpoint holds the
    weights and names their origin, so it loads without the official file."""
    from src.tasks.pose3d import Pose3DModule

    net = {"_target_": "src.models.posenet.PoseNet", "depth": 18, "base_width": 8, "layers": [1, 1, 1, 1]}
    net |= {"num_joints": 18, "depth_dim": 4, "deconv_channels": 8}
    source = _tiny()
    path = tmp_path / "snapshot_24.pth.tar"
    torch.save({"epoch": 24, "network": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    common = {
        "name": "posenet_tiny",
        "net": net,
        "codec": {"_target_": "src.codecs.integral_3d.Integral3D", "input_size": [32, 32], "output_size": [8, 8]}
        | {"depth_dim": 4},
        "loss": {"_target_": "src.losses.IntegralL1Loss"},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": 1e-3},
        "keypoint_info": "h36m18",
    }
    task = Pose3DModule(**common, official_weights=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(task.net.state_dict()[key], value), key
    checkpoint = {"hyper_parameters": dict(task.hparams)}
    task.on_save_checkpoint(checkpoint)
    saved = checkpoint["hyper_parameters"]
    assert saved["official_weights"] is None and saved["initialised_from"] == str(path)
    path.unlink()
    Pose3DModule(**{k: v for k, v in saved.items() if k in common or k == "official_weights"})


def test_mmengine_checkpoint_with_numpy_meta_loads(tmp_path):
    """mmpose 1.x files keep numpy arrays and scalars in ``meta``: read with weights_only, no other globals."""
    import datetime

    import numpy as np

    weights = {"backbone.w": torch.arange(3.0), "head.b": torch.ones(2)}
    meta = {"dataset_meta": {"sigmas": np.array([0.026, 0.025], np.float32), "num": np.int64(17)}, "epoch": 420}
    path = tmp_path / "mmpose.pth"
    torch.save({"meta": meta, "state_dict": weights}, path)
    state = read_official_state_dict(path)
    assert set(state) == set(weights) and torch.equal(state["backbone.w"], weights["backbone.w"])

    # anything beyond numpy data is still refused (here a class of the standard library)
    torch.save({"meta": {"obj": datetime.date(2024, 1, 1)}, "state_dict": weights}, path)
    with pytest.raises(ValueError, match="not unpickled for safety"):
        read_official_state_dict(path)

"""The registry of paradigms: which task trains a model and which dataset feeds it.

The one place where a paradigm's name is looked up. A new paradigm is a task
class, a dataset class with ``from_reader`` and ``collate_fn``, and one entry here. Class paths are
strings, so this module imports nothing heavy and any runner may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paradigm:
    """One way of turning images into poses.

    Attributes:
        name: the name a task class declares (``paradigm`` class attribute).
        task: class path of its LightningModule.
        dataset: class path of its Dataset (``from_reader`` builds it from a data config's reader).
        augmentation: the data-config key holding its training augmentation.
    """

    name: str
    task: str
    dataset: str
    augmentation: str


PARADIGMS: dict[str, Paradigm] = {
    p.name: p
    for p in (
        Paradigm(
            "topdown", "src.tasks.topdown.TopDownPoseModule", "src.datasets.topdown.TopDownDataset", "augmentation"
        ),
        Paradigm(
            "bottomup",
            "src.tasks.bottomup.BottomUpPoseModule",
            "src.datasets.bottomup.BottomUpDataset",
            "bottomup_augmentation",
        ),
        Paradigm("pose3d", "src.tasks.pose3d.Pose3DModule", "src.datasets.pose3d.Pose3DDataset", "augmentation_3d"),
    )
}


def get_paradigm(name: str) -> Paradigm:
    """Look a paradigm up by name; unknown names fail with the list of known ones."""
    try:
        return PARADIGMS[name]
    except KeyError:
        raise ValueError(f"unknown paradigm {name!r}; known: {sorted(PARADIGMS)}") from None

"""The synthetic datasets as readers: each one generates its files on first use (cached under
``root``), then reads them with the reader of the real format it imitates.

The direction is one way: the synthetic package imports the readers, never the reverse, so the
readers of real data load no generator code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.readers.coco import SPLITS, COCOReader
from src.readers.crowdpose import CrowdPoseReader
from src.readers.h36m import Human36MReader
from src.readers.mpii import MPIIReader
from src.readers.muco import MuCoReader
from src.readers.mupots import SPLITS as MUPOTS_SPLITS
from src.readers.mupots import MuPoTSReader


class SyntheticCOCOReader(COCOReader):
    """The embedded synthetic dataset: generated offline under ``root`` on first use, then read as COCO.

    Args:
        synthetic: keyword arguments of ``ensure_synthetic_coco`` (size, people per image, ...).
        Others: as `COCOReader`.
    """

    name = "synthetic"

    def __init__(self, *, synthetic: dict | None = None, **paths: Any) -> None:
        super().__init__(**paths)
        self.synthetic = dict(synthetic or {})

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Generate (or reuse) the dataset under ``root``; the writer makes both splits at once."""
        from src.synthetic.generate import ensure_synthetic_coco

        del splits  # nothing to check: the generator's own files
        ensure_synthetic_coco(self.root, **self.synthetic)


class SyntheticCrowdPoseReader(CrowdPoseReader):
    """The synthetic generator's scenes written in the CrowdPose format (`crowdpose_writer`) on
    first use, then read as CrowdPose. ``synthetic``: the generator's keyword arguments."""

    name = "synthetic_crowdpose"

    def __init__(self, *, synthetic: dict | None = None, **paths: Any) -> None:
        super().__init__(**paths)
        self.synthetic = dict(synthetic or {})

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        from src.synthetic.crowdpose_writer import ensure_synthetic_crowdpose

        ensure_synthetic_crowdpose(self.root, **self.synthetic)
        super().prepare(splits)


class SyntheticMPIIReader(MPIIReader):
    """An MPII-layout dataset generated offline on first use, then read like the real one.

    Args:
        root: where the dataset is written (and read).
        synthetic: keyword arguments of ``ensure_synthetic_mpii`` (seed, sizes, ...).
        **paths: the path arguments of `MPIIReader` (defaults: the official layout).
    """

    name = "synthetic_mpii"

    def __init__(self, *, root: str | Path, synthetic: dict | None = None, **paths: Any) -> None:
        super().__init__(root=root, **paths)
        self.synthetic = dict(synthetic or {})

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Generate (or reuse) the dataset under ``root``, then check the layout of ``splits``."""
        from src.synthetic.mpii_writer import ensure_synthetic_mpii  # heavy; only when generating

        ensure_synthetic_mpii(self.root, **self.synthetic)
        super().prepare(splits)


class SyntheticHuman36MReader(Human36MReader):
    """A Human3.6M-layout dataset generated offline on first use, then read like the real one.

    Args:
        root: where the dataset is written (and read).
        synthetic: keyword arguments of ``ensure_synthetic_h36m`` (seed, subjects, frames, ...).
        **options: the other arguments of `Human36MReader`.
    """

    name = "synthetic_h36m"

    def __init__(self, *, root: str | Path, synthetic: dict | None = None, **options: Any) -> None:
        super().__init__(root=root, **options)
        self.synthetic = dict(synthetic or {})

    def prepare(self, splits: Sequence[str] = SPLITS) -> None:
        """Generate (or reuse) the dataset under ``root``, then check ``splits`` (and, for training,
        the mixed-in 2D source)."""
        from src.synthetic.h36m_writer import ensure_synthetic_h36m  # heavy; only when generating

        ensure_synthetic_h36m(self.root, **self.synthetic)
        super().prepare(splits)


class SyntheticMuCoReader(MuCoReader):
    """A MuCo-3DHP-layout dataset (training and validation files) generated offline on first use,
    then read like the real one.

    Args:
        root: where the dataset is written (and read).
        synthetic: keyword arguments of ``ensure_synthetic_muco`` (seed, num_images, num_val, ...).
        **options: the other arguments of `MuCoReader` (``val_file="data/MuCo-3DHP_val.json"``
            validates on the generated validation file).
    """

    name = "synthetic_muco"

    def __init__(self, *, root: str | Path, synthetic: dict | None = None, **options: Any) -> None:
        super().__init__(root=root, **options)
        self.synthetic = dict(synthetic or {})

    def prepare(self, splits: Sequence[str] | None = None) -> None:
        """Generate (or reuse) the dataset under ``root``, then check ``splits`` (and, for training,
        the mixed-in 2D source)."""
        from src.synthetic.muco_writer import ensure_synthetic_muco  # heavy; only when generating

        ensure_synthetic_muco(self.root, **self.synthetic)
        super().prepare(splits)


class SyntheticMuPoTSReader(MuPoTSReader):
    """A MuPoTS-3D-layout test set (short videos of several people) generated offline on first use,
    then read like the real one.

    Args:
        root: where the dataset is written (and read).
        synthetic: keyword arguments of ``ensure_synthetic_mupots`` (seed, num_sequences, frames, ...).
        **options: the other arguments of `MuPoTSReader`.
    """

    name = "synthetic_mupots"

    def __init__(self, *, root: str | Path, synthetic: dict | None = None, **options: Any) -> None:
        super().__init__(root=root, **options)
        self.synthetic = dict(synthetic or {})

    def prepare(self, splits: Sequence[str] = MUPOTS_SPLITS) -> None:
        """Generate (or reuse) the dataset under ``root``, then check ``splits``."""
        from src.synthetic.mupots_writer import ensure_synthetic_mupots  # heavy; only when generating

        ensure_synthetic_mupots(self.root, **self.synthetic)
        super().prepare(splits)

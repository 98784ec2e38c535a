"""Errors raised by the data readers.

Both carry a message that names the offending file and says what is wrong with it, so a user
can fix the problem without reading a traceback.
"""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root, annotation file or image folder is missing.

    The message lists the paths that were expected, how to obtain the data and how to point
    the configuration at another location.
    """


class AnnotationError(ValueError):
    """An annotation or detection file exists but its content is malformed.

    The message names the file and the problem (invalid JSON, missing key, wrong keypoint
    count, non-numeric value, unknown image id, ...).
    """


class ImageDecodeError(ValueError):
    """An image file exists but cannot be decoded (corrupt, truncated or not an image).

    The message names the file.
    """


def missing_mixed_2d(extra_2d: object, *, dataset: str, example_root: str) -> str | None:
    """The message part for a 3D reader whose mixed-in 2D training data is missing (None when it is
    there): which reader, where its paths go, and how to train without it.

    Args:
        extra_2d: the 2D reader mixed into training (its ``prepare(splits=("train",))`` is called).
        dataset: the 3D dataset's name, for "data.mix_2d=false trains on <dataset> alone".
        example_root: an example path for ``data.reader.extra_2d.root``.
    """
    try:
        extra_2d.prepare(splits=("train",))  # type: ignore[attr-defined]
    except DatasetNotFoundError as err:
        name = getattr(extra_2d, "name", type(extra_2d).__name__)
        return (
            f"Training mixes in the 2D data of the {name!r} reader, and it is missing. Its paths are under "
            f"data.reader.extra_2d (e.g. data.reader.extra_2d.root={example_root}, not data.root); "
            f"data.mix_2d=false trains on {dataset} alone.\n{err}"
        )
    return None

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

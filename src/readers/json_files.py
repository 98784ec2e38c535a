"""Reading JSON annotation files with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from src.readers.errors import AnnotationError, DatasetNotFoundError


def read_json(path: Path, what: str) -> Any:
    """The parsed content of ``path``.

    Raises:
        DatasetNotFoundError: the file does not exist ("<what> not found: <path>").
        AnnotationError: invalid JSON (with line and column) or not UTF-8; the message names the file.
    """
    if not path.is_file():
        raise DatasetNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: invalid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not a UTF-8 JSON file ({err})") from err

"""Reading preference data for import: file readers per format, shape detection and normalisation,
hh-rlhf transcript splitting and pairing strategies. Everything here is pure (no database); the
writing lives in ``annotation.services.imports``."""

from annotation.importing.errors import ImportFileError, ImportTooLarge
from annotation.importing.pairing import pairs_for_strategy
from annotation.importing.readers import FORMATS, detect_format, read_records
from annotation.importing.shapes import (
    COMMON_FIELDS,
    SHAPE_FIELDS,
    SHAPES,
    ImportRecord,
    detect_shape,
    normalize_record,
)

__all__ = [
    "COMMON_FIELDS",
    "FORMATS",
    "SHAPE_FIELDS",
    "SHAPES",
    "ImportFileError",
    "ImportRecord",
    "ImportTooLarge",
    "detect_format",
    "detect_shape",
    "normalize_record",
    "pairs_for_strategy",
    "read_records",
]

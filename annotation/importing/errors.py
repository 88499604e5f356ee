"""The errors an import raises for a bad file: where (line or row), which field, and why."""

from __future__ import annotations


class ImportFileError(ValueError):
    """A bad input file or dataset. ``location`` is e.g. "line 3" (JSONL) or "row 3" (CSV, Parquet, HF);
    ``field`` names the offending field ("" when the whole record or file is at fault)."""

    def __init__(self, reason: str, *, location: str = "", field: str = "") -> None:
        self.reason = reason
        self.location = location
        self.field = field
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.reason}"


class ImportTooLarge(ImportFileError):
    """The input expands past the size limit it was read under (a compressed file's content, or the
    uncompressed size a Parquet file declares): refused before it is all read into memory."""

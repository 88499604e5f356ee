"""DRF's JSON parser, hardened: JSON nested past the recursion limit is a 400 parse error, not a 500."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # json raises it, not ValueError, for deep nesting
            raise ParseError("JSON parse error - nested too deeply") from exc

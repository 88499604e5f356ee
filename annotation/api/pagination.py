"""Pagination: cursor pagination by default (stable and cheap over large, growing tables).

``page_size`` is read strictly, as the schema states it: a whole number from 1 to ``max_page_size``, or
absent/empty for the default. DRF's own reading silently falls back to the default for ``page_size=null``
and caps ``page_size=5000``; here both are a 400 naming the parameter, so a client never gets a page of a
size it did not ask for without being told.
"""

import re

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class DefaultCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-id"

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
        return parameters

"""Download filenames are encoded per RFC 6266/5987 whatever the snapshot is called: a quote, a newline or
non-ASCII in the name neither breaks the response nor adds a parameter to ``Content-Disposition``."""

from __future__ import annotations

from email.message import Message

import pytest
from django.urls import reverse

from annotation.models import TokenScope
from training.datasets.api import DOWNLOAD_FORMATS

HOSTILE_NAMES = ['quote"; filename="evil.sh', "line\r\nX-Injected: 1", "naïve ✓ name"]


def _filename(header: str) -> str | None:
    message = Message()
    message["Content-Disposition"] = header
    return message.get_filename()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("fmt", DOWNLOAD_FORMATS)
def test_every_download_carries_the_snapshot_name_encoded(world, name, fmt):
    # A ready snapshot is immutable through the model; the name is set as if it was created so.
    type(world.snapshot).objects.filter(pk=world.snapshot.pk).update(name=name)
    client = world.client_for("engineer", TokenScope.EXPORT)
    resp = client.get(reverse("snapshot-download", args=[world.snapshot.pk, fmt]), {"split": "test"})
    assert resp.status_code == 200
    header = resp["Content-Disposition"]
    assert "\n" not in header and "\r" not in header
    assert header.startswith("attachment;")
    expected_suffix = {"hf": "-hf.tar", "parquet": "-parquet-test.parquet", "trl": "-trl-test.jsonl"}
    got = _filename(header)  # the one filename a client reads is exactly the name (no injected parameter)
    assert got is not None and got.startswith(f"{name}-v1")
    if fmt in expected_suffix:
        assert got.endswith(expected_suffix[fmt])
    assert b"".join(resp.streaming_content)  # the body streams

from __future__ import annotations

import pytest

from credproc.registry import parse_expiration

EPOCH = 1780012687  # 2026-05-28T23:58:07Z


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-28T23:58:07+00:00",
        "2026-05-28T23:58:07Z",
        "2026-05-28T23:58:07z",
        "2026-05-29T01:58:07+02:00",
        "2026-05-28T18:58:07-05:00",
        "2026-05-28T23:58:07.5Z",
        "2026-05-28T23:58:07.123456789+00:00",
        "2026-05-28T23:58:07",
    ],
)
def test_expiration_formats(text: str) -> None:
    assert parse_expiration(text) == EPOCH


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01T00:00:00Z"])
def test_bad_expirations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_expiration(text)

"""The parsers' results on the bundled recordings stay what they were (tests/parsed.py)."""

from .parsed import check_digests


def test_the_bundled_2020_recordings_parse_as_before(baseline):
    check_digests("bundled-2020", baseline)

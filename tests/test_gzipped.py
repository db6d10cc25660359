"""A gzip body joined from parts deflated one by one (alerts/gzipped.py) is the gzip of the
whole text, in one member, whatever the parts; and `/metrics` deflates a district's text only
when it renders it."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given, strategies as st

from alerts.gzipped import deflated, gzip_length, gzip_pieces
from alerts.metrics import MetricsText
from small_districts import GUSU, GUSU_SCHOOLS, SIP, SIP_SCHOOLS, report, school
from district_reports import DistrictReports


def gzipped(parts: list[bytes]) -> bytes:
    return b"".join(gzip_pieces(parts, [deflated(part) for part in parts]))


@given(st.lists(st.binary(max_size=3000) | st.sampled_from([b"", b"a 1\n" * 700]), max_size=12))
def test_joined_chunks_are_one_gzip_member_of_the_whole_text(parts):
    body = gzipped(parts)
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip, one member
    assert reader.decompress(body) == b"".join(parts)
    assert reader.eof and reader.unused_data == b""
    assert len(body) == gzip_length([deflated(part) for part in parts])


def test_a_text_of_many_chunks_is_smaller_and_reads_back():
    lines = [f'junheng_school_indicator{{district="320571",school="320571-{n:03d}",indicator="R1"}} {n / 7}\n'.encode()
             for n in range(2000)]
    parts = [b"".join(lines[i:i + 100]) for i in range(0, len(lines), 100)]
    body = gzipped(parts)
    assert gzip.decompress(body) == b"".join(parts)
    assert len(body) * 5 < len(b"".join(parts))


def test_parts_and_chunks_must_pair():
    try:
        list(gzip_pieces([b"a"], []))
    except ValueError as exc:
        assert "1 parts for 0 chunks" in str(exc)
    else:
        raise AssertionError("unpaired parts were taken")


def test_a_scrape_deflates_only_the_districts_it_renders_again():
    sip, gusu = report([SIP], SIP_SCHOOLS), report([GUSU], GUSU_SCHOOLS)
    source = DistrictReports({"320571": (1, sip), "320508": (2, gusu)})
    metrics = MetricsText(source, clock=lambda: 1_000.0)
    first = metrics.body()
    assert gzip.decompress(b"".join(first.gzip_pieces())) == first.text()

    fixed = report([SIP], [school("320571-001", "320571", "星海实验小学"), SIP_SCHOOLS[1]])
    source.reports["320571"] = (3, fixed)
    second = metrics.body()
    assert gzip.decompress(b"".join(second.gzip_pieces())) == second.text() != first.text()
    # Per family: its header, then 320571's text, then 320508's; the last part is the counters.
    kept = [a is b for a, b in zip(first.packed[:-1], second.packed[:-1])]
    families = len(kept) // 3
    # A family with no line for 320571 in either scrape (schools not reporting a figure, rules
    # not evaluated for want of data: none here) is b"" in both: nothing to deflate again.
    empty = [first.parts[3 * f + 1] == second.parts[3 * f + 1] == b"" for f in range(families)]
    assert kept == [x for f in range(families) for x in (True, empty[f], True)]
    # Only those: every other family of 320571 was deflated again.
    assert [first.parts[3 * f].split()[2] for f in range(families) if empty[f]] == [
        b"junheng_district_indicator_schools_unreported", b"junheng_rules_not_evaluated"]

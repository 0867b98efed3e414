"""Caption lines: the real HumanML3D file, times, round trips and errors that name the line."""

from __future__ import annotations

import math

import pytest

from mate.data.captions import Caption, format_caption, parse_line, read_captions
from mate.data.errors import DatasetError


def test_real_caption_file_parses(hml_caption_file):
    caps = read_captions(hml_caption_file)
    assert len(caps) == 4
    assert caps[0].text == "a man kicks something or someone with his left leg."
    assert caps[0].tokens[:3] == [("a", "DET"), ("man", "NOUN"), ("kick", "VERB")]
    assert ("left", "ADJ") in caps[0].tokens and ("or", "CCONJ") in caps[0].tokens
    assert caps[3].text == "he is flying kick with his left leg"  # no full stop
    assert ("is", "AUX") in caps[3].tokens and ("kick", "NOUN") in caps[3].tokens
    assert all(c.whole and c.start == 0.0 and c.end == 0.0 for c in caps)
    assert [len(c.tokens) for c in caps] == [10, 15, 11, 8]


def test_round_trip_of_real_lines(hml_caption_file):
    for line in hml_caption_file.read_text().splitlines():
        c = parse_line(line)
        assert parse_line(format_caption(c)) == c
        assert format_caption(c) == line  # the real file's spelling of 0.0#0.0 survives


def test_times_and_nan():
    c = parse_line("a person jumps#a/DET person/NOUN jump/VERB#1.5#4.25")
    assert (c.start, c.end, c.whole) == (1.5, 4.25, False)
    assert c.rows(200, 20.0) == (30, 85)
    assert c.rows(60, 20.0) == (30, 60)  # clipped to the clip, as slicing does
    n = parse_line("a person jumps#a/DET person/NOUN jump/VERB#nan#nan")
    assert n.whole and n.rows(123, 20.0) == (0, 123)
    assert not math.isnan(n.start)
    half = parse_line("x#x/NOUN#nan#2.0")  # nan start reads as 0 (the loaders' rule): rows [0, 40)
    assert half.rows(100, 20.0) == (0, 40)


def test_hash_inside_sentence_and_formatter():
    c = parse_line("he does move #3 twice#he/PRON do/VERB move/NOUN twice/ADV#0.0#2.5")
    assert c.text == "he does move #3 twice" and c.end == 2.5
    made = Caption("walk on", [("walk", "VERB"), ("on", "ADP")], 0.5, 1.0)
    assert format_caption(made) == "walk on#walk/VERB on/ADP#0.5#1.0"


@pytest.mark.parametrize("line,fragment", [
    ("no fields at all", "4 fields"),
    ("a man#a/DET man/NOUN#0.0", "4 fields"),
    ("a man#a/DET man#0.0#0.0", "'man' is not word/POS"),
    ("a man#a/DET man/#0.0#0.0", "not word/POS"),
    ("a man##0.0#0.0", "no word/POS tokens"),
    ("#a/DET#0.0#0.0", "empty caption text"),
    ("a man#a/DET man/NOUN#zero#0.0", "start time 'zero'"),
    ("a man#a/DET man/NOUN#0.0#-1", "end time '-1'"),
    ("a man#a/DET man/NOUN#0.0#inf", "end time 'inf'"),
])
def test_malformed_lines_name_file_and_line(tmp_path, hml_caption_file, line, fragment):
    good = hml_caption_file.read_text().splitlines()
    path = tmp_path / "000001.txt"
    path.write_text("\n".join(good[:2] + [line] + good[2:]) + "\n")
    with pytest.raises(DatasetError) as e:
        read_captions(path)
    assert e.value.path == path and e.value.line == 3
    assert fragment in str(e.value) and str(path) in str(e.value) and ":3:" in str(e.value)
    errors: list[DatasetError] = []
    assert len(read_captions(path, errors)) == 4 and len(errors) == 1  # collecting mode keeps the good lines


def test_blank_lines_crlf_and_missing(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"a man walks#a/DET man/NOUN walk/VERB#0.0#0.0\r\n\r\n\nhe runs#he/PRON run/VERB#1.0#3.0\r\n")
    caps = read_captions(p)
    assert [c.text for c in caps] == ["a man walks", "he runs"] and caps[1].end == 3.0
    with pytest.raises(DatasetError, match="does not exist"):
        read_captions(tmp_path / "missing.txt")
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"\xff\xfe caption")
    with pytest.raises(DatasetError, match="UTF-8"):
        read_captions(bad)

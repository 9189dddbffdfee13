"""Whatever bytes arrive, reading them ends in a parsed message or Unreadable (an AR), and an ACK
can always be built: the listener never crashes on input."""

from hypothesis import given, settings
from hypothesis import strategies as st

from hl7 import codec

HEADERS = st.sampled_from([b"", b"MSH", b"MSH|", b"MSH|^~\\&", b"MSH|^~\\&|A|B|C|D|2024||ADT^A08|X|P|2.5",
                           b"MSH^~\\&|", b"MSH|||||", b"MSH|^~\\&|||||||||2.5|||||||UNICODE UTF-8"])


@settings(max_examples=400, deadline=None)
@given(HEADERS, st.binary(max_size=300))
def test_any_bytes_parse_or_are_unreadable_and_get_an_ack(header, tail):
    raw = header + tail
    try:
        parsed, charset = codec.parse(raw)
    except codec.Unreadable as error:
        text, data = codec.build_ack("AR", error.header, str(error))
    else:
        assert parsed.segments[0].name == "MSH"
        for segment in parsed.segments:
            for number in range(len(segment.fields) + 2):
                parsed.value(segment, number, 2, 1, 2)
        text, data = codec.build_ack("AA", parsed, "", charset)
    assert "MSA|" in text and data

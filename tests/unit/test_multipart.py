"""The upload form parser: real client bodies, chunk edges, and hostile input."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Mapping

import pytest
from requests_toolbelt import MultipartEncoder

from spoold.errors import InvalidFilename, Rejected
from spoold.http.multipart import (
    FilePart,
    FormLimits,
    FormTooLarge,
    InvalidForm,
    boundary_of,
    parse_form,
)

KEEP = {"name", "version", "sha256_digest", ":action"}
B = "b0undary"
CT = f"multipart/form-data; boundary={B}"


class Sink:
    """Records what the parser opened and wrote."""

    def __init__(self) -> None:
        self.parts: list[tuple[FilePart, dict[str, str]]] = []
        self.buffer = io.BytesIO()

    def __call__(self, part: FilePart, fields: Mapping[str, str]) -> io.BytesIO:
        self.parts.append((part, dict(fields)))
        return self.buffer

    @property
    def data(self) -> bytes:
        return self.buffer.getvalue()


def parse(body: bytes, content_type: str = CT, **kwargs):  # type: ignore[no-untyped-def]
    sink = Sink()
    form = parse_form(io.BytesIO(body), content_type, sink, keep=kwargs.pop("keep", KEEP), **kwargs)
    return form, sink


def part(name: str, value: bytes, *, filename: str | None = None, headers: str = "") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return (f"--{B}\r\nContent-Disposition: {disposition}\r\n{headers}\r\n").encode() + value + b"\r\n"


END = f"--{B}--\r\n".encode()


def test_twine_body() -> None:
    content = bytes(range(256)) * 4000  # every byte value, CR and LF included
    encoder = MultipartEncoder([
        ("name", "demo"), ("version", "1.0"),
        ("classifiers", "A"), ("classifiers", "B"),
        ("description", "x" * 300_000),
        ("sha256_digest", "ab" * 32), (":action", "file_upload"),
        ("content", ("demo-1.0.tar.gz", io.BytesIO(content), "application/octet-stream")),
    ])
    form, sink = parse(encoder.to_string(), encoder.content_type)
    assert form.fields == {"name": "demo", "version": "1.0", "sha256_digest": "ab" * 32,
                           ":action": "file_upload"}
    assert form.file == FilePart("content", "demo-1.0.tar.gz", "application/octet-stream")
    assert form.file_size == len(content)
    assert sink.data == content
    assert form.skipped == {"classifiers", "description"}
    # the fields before the file part were known when it was opened
    assert sink.parts[0][1]["name"] == "demo"


@pytest.mark.parametrize("chunk", [1024, 1025, 1031, 4096, 65536])
def test_boundaries_across_chunk_edges(chunk: int) -> None:
    content = (b"\r\n--" + B.encode()[:-1] + b"X\r\n-") * 500  # near-delimiters everywhere
    body = part("name", b"demo") + part("content", content, filename="demo-1.0.tar.gz") + END
    form, sink = parse(body, limits=FormLimits(chunk_size=chunk))
    assert sink.data == content
    assert form.fields["name"] == "demo"


def test_preamble_epilogue_padding_and_no_final_crlf() -> None:
    body = (b"preamble text\r\n" + part("name", b"demo").replace(f"--{B}\r\n".encode(), f"--{B}  \t\r\n".encode())
            + f"--{B}--".encode())
    form, _ = parse(body)
    assert form.fields == {"name": "demo"} and form.file is None
    form, _ = parse(part("name", b"demo") + END + b"epilogue, ignored\r\n--junk")
    assert form.fields == {"name": "demo"}


def test_empty_values_and_unicode() -> None:
    body = part("name", "naïve-☃".encode()) + part("version", b"") + END
    form, _ = parse(body)
    assert form.fields == {"name": "naïve-☃", "version": ""}


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('form-data; name="content"; filename="demo-1.0.tar.gz"', "demo-1.0.tar.gz"),
        ('form-data; name=content; filename=demo-1.0.tar.gz', "demo-1.0.tar.gz"),
        ("form-data; name=\"content\"; filename*=utf-8''d%41mo-1.0.tar.gz", "dAmo-1.0.tar.gz"),
        ('form-data; name="content"; filename="d\\"q-1.0.tar.gz"', 'd"q-1.0.tar.gz'),
        ('form-data; name="content"; filename="d%22q-1.0.tar.gz"', 'd"q-1.0.tar.gz'),
        ('FORM-DATA; NAME="content"; FILENAME="x;y=z.tar.gz"', "x;y=z.tar.gz"),
    ],
)
def test_filename_forms(disposition: str, expected: str) -> None:
    body = f"--{B}\r\nContent-Disposition: {disposition}\r\n\r\nDATA\r\n".encode() + END
    form, sink = parse(body)
    assert form.file is not None and form.file.filename == expected
    assert sink.data == b"DATA"


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "dir/demo-1.0.tar.gz", "C:\\Users\\me\\demo-1.0.tar.gz", ".hidden.tar.gz", "",
     "a%0Ab.tar.gz", "d\u00e9mo-1.0.tar.gz", "a b-1.0.tar.gz"],
)
def test_filename_with_path_parts_or_unsafe_is_rejected(filename: str) -> None:
    # (also non-ASCII: the one filename rule, spoold.inspection.filenames.check_filename)
    body = part("content", b"DATA", filename=filename) + END
    with pytest.raises(InvalidFilename):
        parse(body)


def test_nothing_is_written_for_a_rejected_filename() -> None:
    body = part("content", b"DATA", filename="../x.tar.gz") + END
    sink = Sink()
    with pytest.raises(InvalidFilename):
        parse_form(io.BytesIO(body), CT, sink)
    assert sink.parts == []


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "no Content-Type"),
        ("", "no Content-Type"),
        ("application/x-www-form-urlencoded", "not multipart/form-data"),
        ("multipart/form-data", "no boundary"),
        ("multipart/form-data; boundary=", "not valid"),
        ("multipart/form-data; boundary=" + "x" * 71, "not valid"),
        ("multipart/form-data; boundary=a; boundary=b", "given twice"),
        ('multipart/form-data; boundary="unterminated', "not closed"),
        ("multipart/form-data; boundary=bad\x01char", "not valid"),
    ],
)
def test_bad_content_type(content_type: str | None, message: str) -> None:
    with pytest.raises(InvalidForm, match=message):
        boundary_of(content_type)


def test_quoted_boundary() -> None:
    assert boundary_of('multipart/form-data; boundary="a b:c"') == "a b:c"
    assert boundary_of("Multipart/Form-Data;boundary=xyz ; charset=utf-8") == "xyz"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "boundary never appears"),
        (b"no boundary at all in here", "boundary never appears"),
        (part("name", b"demo") + f"--{B}".encode(), "ends without its closing boundary"),
        (part("name", b"demo"), "ends inside the part 'name'"),
        (part("name", b"demo")[:-2], "cut short"),
        (f"--{B}\r\nContent-Disposition: form-data; name=\"x\"\r\n".encode(), "inside a part's headers"),
        (part("content", b"half a file", filename="a-1.tar.gz")[:-10], "cut short"),
        (f"--{B}\r\n\r\nvalue\r\n".encode() + END, "no Content-Disposition"),
        (f"--{B}\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\nv\r\n".encode() + END, "not form-data"),
        (f"--{B}\r\nContent-Disposition: form-data\r\n\r\nv\r\n".encode() + END, "no name"),
        (f"--{B}\r\nContent-Disposition form-data\r\n\r\nv\r\n".encode() + END, "malformed header"),
        (f"--{B}\r\nBad Header: x\r\n\r\nv\r\n".encode() + END, "malformed header"),
        (f"--{B}\r\nContent-Disposition: form-data;\r\n name=\"x\"\r\n\r\nv\r\n".encode() + END, "folded"),
        (part("name", b"v", headers="Content-Disposition: form-data; name=\"y\"\r\n"), "twice"),
        (part("name", b"v", headers="Content-Transfer-Encoding: base64\r\n") + END, "base64"),
        (part("name", b"a") + part("name", b"b") + END, "more than once"),
        (part("content", b"a", filename="a-1.tar.gz") + part("content", b"b", filename="b-1.tar.gz") + END,
         "more than one"),
        (part("content", b"not a file") + END, "not a file part"),
        (part("name", b"\xff\xfe") + END, "not UTF-8"),
        (f"--{B}\r\nContent-Disposition: form-data; name=\"\xff\"\r\n\r\nv\r\n".encode("latin-1") + END, "not UTF-8"),
        (f"--{B}garbage\r\n".encode() + END, "text after a boundary"),
        (f"--{B}\r\nContent-Disposition: form-data; name=\"x\"; name=\"y\"\r\n\r\nv\r\n".encode() + END, "twice"),
        (f"--{B}\r\nContent-Disposition: form-data; name=\"x\"junk\r\n\r\nv\r\n".encode() + END, "after its closing quote"),
        (f"--{B}\r\nContent-Disposition: form-data; name=\"x\"; filename*=latin-1''a.tar.gz\r\n\r\nv\r\n".encode() + END, "charset"),
        (f"--{B}\r\nContent-Disposition: form-data; name=\"x\"; filename*=nonsense\r\n\r\nv\r\n".encode() + END, "malformed"),
    ],
)
def test_malformed_forms(body: bytes, message: str) -> None:
    with pytest.raises(InvalidForm, match=message) as info:
        parse(body, keep=KEEP | {"x", "y"})
    assert isinstance(info.value, Rejected) and info.value.http_status == 400


def test_limits() -> None:
    with pytest.raises(FormTooLarge, match="'name'.*longer than 100 bytes"):
        parse(part("name", b"x" * 101) + END, limits=FormLimits(max_field_size=100))
    form, _ = parse(part("name", b"x" * 100) + END, limits=FormLimits(max_field_size=100))
    assert form.fields["name"] == "x" * 100  # the limit itself is allowed
    with pytest.raises(FormTooLarge, match="more than 3 parts"):
        parse(b"".join(part(f"f{i}", b"v") for i in range(4)) + END, limits=FormLimits(max_parts=3))
    with pytest.raises(FormTooLarge, match="header"):
        parse(part("name", b"v", headers="X-Pad: " + "p" * 20_000 + "\r\n") + END)
    with pytest.raises(FormTooLarge, match="header"):
        parse(part("name", b"v", headers="".join(f"X-{i}: v\r\n" for i in range(20))) + END)
    # a header line with no CRLF at all, forever
    with pytest.raises(FormTooLarge):
        parse(f"--{B}\r\nContent-Disposition: ".encode() + b"x" * 1_000_000)


def test_skipped_fields_are_not_held_in_memory() -> None:
    """A 20 MB unkept field and a 20 MB file go through in far less memory than that."""
    big = b"d" * (20 << 20)
    body = part("description", big) + part("content", big, filename="a-1.tar.gz") + END
    stream = io.BytesIO(body)

    class Null:
        size = 0

        def write(self, data: bytes) -> None:
            self.size += len(data)

    null = Null()
    tracemalloc.start()
    try:
        form = parse_form(stream, CT, lambda p, f: null, keep=KEEP)  # type: ignore[arg-type, return-value]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert form.file_size == null.size == len(big)
    assert peak < 4 << 20


def test_write_errors_propagate() -> None:
    class Full:
        def write(self, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    body = part("content", b"x" * 10, filename="a-1.tar.gz") + END
    with pytest.raises(OSError, match="No space left"):
        parse_form(io.BytesIO(body), CT, lambda p, f: Full())  # type: ignore[arg-type, return-value]


def test_parses_from_the_current_position() -> None:
    body = b"HEADER-NOT-PART-OF-FORM" + part("name", b"demo") + END
    stream = io.BytesIO(body)
    stream.seek(len(b"HEADER-NOT-PART-OF-FORM"))
    form = parse_form(stream, CT, Sink(), keep=KEEP)
    assert form.fields == {"name": "demo"}

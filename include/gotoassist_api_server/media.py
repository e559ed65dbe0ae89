"""Deterministic stand-ins for the files behind a recording's download links.

Each recording has three files: the MP4 recording, a JSON list of session events and a PNG thumbnail.
Their bytes derive from the recording ID alone, so a download can be checked byte for byte and the
MP4's size is known without producing it. The MP4 is shaped like one (an ``ftyp`` box followed by an
``mdat`` box) but its payload is pseudo-random, not playable media.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import zlib
from dataclasses import dataclass

#: The MP4 header: an ``ftyp`` box declaring ISO base media with MP4 brands.
_FTYP_BOX = struct.pack(">I4s4sI4s4s4s", 28, b"ftyp", b"isom", 0x200, b"isom", b"iso2", b"mp41")
_MDAT_HEADER_SIZE = 8
_MIN_PAYLOAD_SIZE = 4 * 1024
_PAYLOAD_SIZE_SPREAD = 40 * 1024

_THUMBNAIL_WIDTH = 32
_THUMBNAIL_HEIGHT = 18

_EVENT_TYPES = (
    "chat_message",
    "screen_sharing_started",
    "remote_control_started",
    "remote_control_stopped",
    "file_transfer",
    "system_info_viewed",
)


@dataclass(frozen=True)
class RecordingFile:
    """One downloadable file of a recording."""

    name: str
    media_type: str


RECORDING_FILE = RecordingFile("recording.mp4", "video/mp4")
EVENTS_FILE = RecordingFile("events.json", "application/json")
THUMBNAIL_FILE = RecordingFile("thumbnail.png", "image/png")

#: The files of every recording, by file name.
RECORDING_FILES = {file.name: file for file in (RECORDING_FILE, EVENTS_FILE, THUMBNAIL_FILE)}


def _digest(purpose: str, recording_id: str, size: int) -> bytes:
    return hashlib.shake_256(f"{purpose}:{recording_id}".encode()).digest(size)


def _payload_size(recording_id: str) -> int:
    spread = int.from_bytes(_digest("size", recording_id, 4), "big") % _PAYLOAD_SIZE_SPREAD
    return _MIN_PAYLOAD_SIZE + spread


def recording_size(recording_id: str, scale: int = 1) -> int:
    """Return the size in bytes of a recording's MP4 file.

    :param recording_id: the recording ID.
    :param scale: how many times the usual payload the file carries.
    :return: the size, between about 4 KB and 44 KB times ``scale``, stable for the ID.
    """
    return len(_FTYP_BOX) + _MDAT_HEADER_SIZE + _payload_size(recording_id) * scale


def recording_mp4(recording_id: str, scale: int = 1) -> bytes:
    """Return the bytes of a recording's MP4 file.

    :param recording_id: the recording ID.
    :param scale: how many times the usual payload the file carries.
    :return: the file content, :func:`recording_size` bytes long.
    """
    payload_size = _payload_size(recording_id) * scale
    mdat_header = struct.pack(">I4s", _MDAT_HEADER_SIZE + payload_size, b"mdat")
    return _FTYP_BOX + mdat_header + _digest("media", recording_id, payload_size)


def events_json(recording_id: str) -> bytes:
    """Return the bytes of a recording's session events file.

    :param recording_id: the recording ID.
    :return: a JSON object with the ID and a list of events, each at an offset in seconds.
    """
    chooser = random.Random(int.from_bytes(_digest("events", recording_id, 8), "big"))
    offset = 0
    events = [{"offsetSeconds": 0, "type": "session_started"}]
    for _ in range(chooser.randint(2, 8)):
        offset += chooser.randint(5, 300)
        events.append({"offsetSeconds": offset, "type": chooser.choice(_EVENT_TYPES)})
    events.append({"offsetSeconds": offset + chooser.randint(5, 60), "type": "session_ended"})
    document = {"recordingId": recording_id, "events": events}
    return json.dumps(document, indent=2).encode()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def thumbnail_png(recording_id: str) -> bytes:
    """Return the bytes of a recording's thumbnail: a small PNG with a colour gradient.

    :param recording_id: the recording ID.
    :return: a valid 32 x 18 RGB PNG image.
    """
    red, green, blue = _digest("thumbnail", recording_id, 3)
    rows = []
    for y in range(_THUMBNAIL_HEIGHT):
        shade = y * 4
        pixels = bytes(
            channel
            for x in range(_THUMBNAIL_WIDTH)
            for channel in ((red + x * 2) % 256, (green + shade) % 256, blue)
        )
        rows.append(b"\x00" + pixels)
    header = struct.pack(">IIBBBBB", _THUMBNAIL_WIDTH, _THUMBNAIL_HEIGHT, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _png_chunk(b"IEND", b"")
    )


def file_content(file: RecordingFile, recording_id: str, scale: int = 1) -> bytes:
    """Return the bytes of one of a recording's files.

    :param file: which file.
    :param recording_id: the recording ID.
    :param scale: how many times the usual payload the MP4 carries; the other files keep their size.
    :return: the file content.
    """
    if file.name == RECORDING_FILE.name:
        return recording_mp4(recording_id, scale)
    producers = {EVENTS_FILE.name: events_json, THUMBNAIL_FILE.name: thumbnail_png}
    return producers[file.name](recording_id)

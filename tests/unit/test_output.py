"""The capped frame reader, over a real socket pair."""

import socket
import struct
import threading
import time

import pytest

from crucible_ray.sandbox.docker.frames import STDERR, STDOUT, FrameReader
from crucible_ray.sandbox.streams import Deadline


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(data)) + data


def test_demultiplexes_split_frames_and_caps_each_stream():
    a, b = socket.socketpair()
    payload = frame(STDOUT, b"hello ") + frame(STDERR, b"warn") + frame(STDOUT, b"x" * 5000)
    reader = FrameReader(a, limit=1024)

    def send():
        for i in range(0, len(payload), 7):  # frames arrive cut at arbitrary points
            b.sendall(payload[i : i + 7])
        b.close()

    threading.Thread(target=send).start()
    reader.read_until(time.monotonic() + 10)
    out, err = reader.streams[STDOUT], reader.streams[STDERR]
    assert bytes(out.data) == (b"hello " + b"x" * 5000)[:1024]
    assert out.total == 5006 and out.truncated
    assert err.text() == "warn" and not err.truncated


def test_invalid_utf8_is_replaced():
    a, b = socket.socketpair()
    b.sendall(frame(STDOUT, b"ok \xff\xfe end"))
    b.close()
    reader = FrameReader(a, limit=100)
    reader.read_until(time.monotonic() + 5)
    assert reader.streams[STDOUT].text() == "ok \ufffd\ufffd end"


def test_deadline_is_raised_when_nothing_arrives():
    a, _b = socket.socketpair()
    with pytest.raises(Deadline):
        FrameReader(a, limit=100).read_until(time.monotonic() + 0.2)

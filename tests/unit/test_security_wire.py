"""gVisor's trace wire format: real messages, captured from runsc 2024-07-29 on this machine
(a Python program that opened a socket, connected to 1.2.3.4:80, ran a shell and opened
/proc/self/oom_score_adj for writing), then malformed ones."""

from __future__ import annotations

import pytest

from crucible_ray.security import wire
from crucible_ray.security.rules import SandboxFacts, default_rules, evaluate

SANDBOX = "44e432376a2143b390982673458ae9fa5060c0e5c7616a9f016f0ae24a73ffb7"
CAPTURED = {
    "socket": bytes.fromhex(
        "08000c00000000000a57088abd93f1aae2edf618200132403434653433323337366132313433623339303938"
        "3236373334353861653966613530363063306535633736313661396630313666306165323461373366666237"
        "4a07707974686f6e331829200228818020"
    ),
    "connect": bytes.fromhex(
        "08000a00000000000a5708f6dbe0f1aae2edf618200132403434653433323337366132313433623339303938"
        "3236373334353861653966613530363063306535633736313661396630313666306165323461373366666237"
        "4a07707974686f6e33182a2003321002000050010203040000000000000000"
    ),
    "execve": bytes.fromhex(
        "08000300000000000a570881d3eff3aae2edf618200232403434653433323337366132313433623339303938"
        "3236373334353861653966613530363063306535633736313661396630313666306165323461373366666237"
        "4a07707974686f6e33120d2f7573722f62696e2f646173681a0273681a022d631a0f2f62696e2f7368202d63"
        "20747275652219505954484f4e444f4e54575249544542595445434f44453d312221504154483d2f7573722f"
        "6c6f63616c2f62696e3a2f7573722f62696e3a2f62696e2209484f4d453d2f746d70220c4c414e473d432e55"
        "54462d38220b544d504449523d2f746d7028ed8302"
    ),
    "open-proc": bytes.fromhex(
        "08000700000000000a5d08a8e8cb8eabe2edf618200132403434653433323337366132313433623339303938"
        "3236373334353861653966613530363063306535633736313661396630313666306165323461373366666237"
        "42042f746d704a07707974686f6e33188102209cffffffffffffffff0132182f70726f632f73656c662f6f6f"
        "6d5f73636f72655f61646a38c1842040b603"
    ),
}


def test_real_messages_decode():
    socket_ = wire.decode(CAPTURED["socket"])
    assert socket_.kind == "socket" and socket_.fields["domain"] == 2  # AF_INET
    assert socket_.context["container_id"] == SANDBOX and socket_.context["group_id"] == 1
    connect = wire.decode(CAPTURED["connect"])
    assert connect.kind == "connect" and connect.fields["address"][:8] == bytes(
        [2, 0, 0, 80, 1, 2, 3, 4])  # fmt: skip
    execve = wire.decode(CAPTURED["execve"])
    assert execve.kind == "execve" and execve.fields["binary_path"] == "/usr/bin/dash"
    assert execve.fields["argv"] == ["sh", "-c", "/bin/sh -c true"]
    opened = wire.decode(CAPTURED["open-proc"])
    assert opened.fields["path"] == "/proc/self/oom_score_adj" and opened.fields["fd"] == -100
    assert not opened.is_exit and opened.dropped == 0


def test_the_rules_name_what_the_real_messages_did():
    facts = SandboxFacts(SANDBOX, "python", compiled=False)
    found = {kind: [(e.rule, e.detail) for e in
                    evaluate(default_rules(), wire.decode(message), facts)]
             for kind, message in CAPTURED.items()}  # fmt: skip
    assert found == {
        "socket": [("network_socket", "socket(domain=2, type=524289)")],
        "connect": [("network_connect", "connect(1.2.3.4:80)")],
        "execve": [
            ("shell_executed", "execve('/usr/bin/dash', argv=['sh', '-c', '/bin/sh -c true'])")
        ],
        "open-proc": [("proc_sys_write", "open('/proc/self/oom_score_adj', write)")],
    }


def test_a_type_we_do_not_ask_for_is_skipped_unread():
    header = wire.HEADER.pack(8, 999, 0)
    assert wire.decode(header + b"\xff\xff\xff") is None


@pytest.mark.parametrize(
    "message",
    [
        b"\x08\x00",  # shorter than a header
        wire.HEADER.pack(64, 12, 0) + b"\x08\x01",  # a header longer than the message
        wire.HEADER.pack(8, 12, 0) + b"\x0a\x05ab",  # a field longer than what follows
        wire.HEADER.pack(8, 12, 0) + b"\x20" + b"\xff" * 11,  # a varint of 11 bytes
        wire.HEADER.pack(8, 12, 0) + b"\x0b",  # wire type 3 (groups): not in this schema
        wire.HEADER.pack(8, 12, 0) + b"\x22\x01x",  # domain (a number) sent as bytes
        wire.HEADER.pack(8, 12, 0) + b"\x20\x01" * (wire.MAX_FIELDS + 1),  # a field flood
    ],
)
def test_malformed_messages_are_errors(message):
    with pytest.raises(wire.WireError):
        wire.decode(message)


def test_negative_numbers_and_long_strings():
    fd = b"\x20" + b"\x9c\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # -100 as int64
    path = b"\x32" + bytes([0xF0, 0x3F]) + b"/" * 8176  # field 6, 8176 bytes
    point = wire.decode(wire.HEADER.pack(8, 7, 3) + fd + path)
    assert point.fields["fd"] == -100 and len(point.fields["path"]) == wire.MAX_STRING
    assert point.dropped == 3


def test_the_handshake():
    assert wire.handshake_version(b"\x08\x01") == 1
    assert wire.handshake_version(b"") == 0
    assert wire.HANDSHAKE == b"\x08\x01"

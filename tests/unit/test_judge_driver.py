"""The host's half of the judge driver's protocol (pure): messages out, reports in."""

from __future__ import annotations

import json

import pytest

from crucible_ray.judge import driver
from crucible_ray.judge.driver import DriverProtocolError, TestLimits
from crucible_ray.languages import IMAGES

LIMITS = TestLimits(wall_s=3, cpu_s=1, stdout_bytes=100, stderr_bytes=50)


def report(**changes):
    fields = {"nonce": "n1", "exit_code": 0, "signal": None, "cpu_ms": 1.5, "wall_ms": 2.0,
              "max_rss_kb": 900, "wall_killed": False, "output_exceeded": False, "stdout_bytes": 3,
              "stdout_total": 3, "stderr_bytes": 0, "stderr_total": 0, "result_bytes": 0,
              "checker_exit": None, "checker_signal": None}  # fmt: skip
    fields.update(changes)
    return json.dumps(fields).encode()


def test_a_test_message_is_its_length_its_header_then_its_stdin():
    message = driver.test_message(LIMITS, b"1 2\n", "n1")
    length = int(message[:8])
    header = json.loads(message[8 : 8 + length])
    assert header == {"wall_s": 3, "cpu_s": 1, "stdout_bytes": 100, "stderr_bytes": 50,
                      "stdin_bytes": 4, "nonce": "n1", "mode": "stdio", "payload_bytes": 0,
                      "token": None}  # fmt: skip
    assert message[8 + length :] == b"1 2\n"


def test_a_function_or_assert_message_carries_its_payload_after_the_stdin():
    message = driver.test_message(LIMITS, b"in", "n1", "assert", b'{"code":"x"}', "t1")
    header = json.loads(message[8 : 8 + int(message[:8])])
    assert (header["mode"], header["payload_bytes"], header["token"]) == ("assert", 12, "t1")
    assert message.endswith(b'in{"code":"x"}')


def test_a_report_with_the_tests_nonce_is_read():
    fields = driver.parse_report(report(), LIMITS, "n1")
    assert fields["exit_code"] == 0 and fields["stdout_bytes"] == 3 and "nonce" not in fields


@pytest.mark.parametrize(
    "header",
    [
        report(nonce="forged"),
        report(nonce=None),
        report(stdout_bytes=101),  # more than the test's limit
        report(result_bytes=101),
        report(checker_signal="9"),
        report(stderr_bytes=-1),
        report(exit_code="0"),
        report(wall_killed=1),
        b"[1, 2]",
        b"not json",
    ],
)
def test_anything_else_is_a_protocol_error(header):
    with pytest.raises(DriverProtocolError):
        driver.parse_report(header, LIMITS, "n1")


@pytest.mark.parametrize("prefix", [b"X00000010", b"T0000001a", b"T99999999", b"T0001"])
def test_report_prefixes_are_checked(prefix):
    with pytest.raises(DriverProtocolError):
        driver.report_length(prefix)


def test_nonces_differ():
    assert len({driver.new_nonce() for _ in range(100)}) == 100


def test_every_image_has_a_driver_plan_on_the_same_image():
    for spec in IMAGES.values():
        plan = driver.plan(spec)
        assert plan["run"] and plan["source"].endswith(spec.source_file)
        judged = driver.driver_spec(spec)
        assert judged.command[:5] == ("/usr/bin/python3", "-I", "-S", "-B", driver.DRIVER_PATH)
        assert judged.image_repository == spec.image_repository and judged.packages == spec.packages
        assert (plan["compile"] is None) == (spec.compile is None)
        # function and assert tests: Python's images only, each with its own package paths
        assert (plan.get("serve") is not None) == (spec.language == "python")
        if spec.name == "python-science":
            assert plan["paths"] == ["/usr/lib/python3/dist-packages"]


def test_the_frame_limit_holds_the_largest_report():
    assert driver.frame_limit(LIMITS) >= driver.REPORT_PREFIX + driver.MAX_REPORT_HEADER + 150

"""Reading the node probe's answer (`crucible_ray.cluster.local`) among what Ray prints."""

from crucible_ray.cluster.local import PORTS_MARKER, parse_alive_ports


def test_the_answer_is_found_among_ray_log_lines():
    stdout = (
        "[2026-12-01 20:57:01,123 W 123 123] gcs_client.cc:1: a warning\n"
        f"{PORTS_MARKER}[20650, 20660]\n"
        "[2026-12-01 20:57:02,456 I 123 123] core_worker.cc:2: shutting down\n"
        "-\n"
    )
    assert parse_alive_ports(stdout) == {20650, 20660}


def test_no_answer_means_no_node_known_alive():
    assert parse_alive_ports("[2026-12-01 20:57:01] only a log line\n") == set()

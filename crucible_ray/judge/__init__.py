"""Judging: test cases, comparison, verdicts."""

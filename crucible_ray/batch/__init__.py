"""High-volume batch jobs straight on the cluster's executor pool (no HTTP).

    results = ResultsFile(Path("out.jsonl"), resume=True)
    summary = BatchJob(results).run(read_items(Path("in.jsonl")), tally)

Input is read lazily, results are appended as they finish, ``resume`` skips what is done.
"""

from crucible_ray.batch.items import BatchItem, InputLine, count_items, read_items
from crucible_ray.batch.job import BatchJob, BatchSummary
from crucible_ray.batch.results import BatchError, ResultsFile

__all__ = ["BatchError", "BatchItem", "BatchJob", "BatchSummary", "InputLine", "ResultsFile",
           "count_items", "read_items"]  # fmt: skip

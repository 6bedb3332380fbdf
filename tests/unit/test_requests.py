import pytest

from crucible_ray.errors import UnsupportedLanguage
from crucible_ray.languages import get_language
from crucible_ray.models import EvalStatus


def test_unknown_language_names_the_field():
    with pytest.raises(UnsupportedLanguage) as info:
        get_language("cobol")
    assert info.value.field == "language" and "python" in str(info.value)


def test_final_statuses():
    final = {s for s in EvalStatus if s.is_final}
    assert final == {"succeeded", "failed", "compile_error", "timed_out", "cancelled", "error"}


def test_batch_size_is_bounded_by_the_setting_not_the_schema():
    from crucible_ray.api.schemas import BatchSubmission

    items = [{"code": "print(1)"}] * 1500  # max_batch_items may be set above 1,000
    assert len(BatchSubmission(items=items).items) == 1500

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
    assert final == {"succeeded", "failed", "timed_out", "cancelled", "error"}

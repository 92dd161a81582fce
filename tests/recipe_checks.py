"""What every recipe's settings must be: a frozen ``gencourse.recipes.Settings`` whose every field has a
meaning and shows in the table a notebook displays."""

import dataclasses

import pytest

from gencourse import recipes


def assert_frozen_and_documented(settings) -> None:
    assert isinstance(settings, recipes.Settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.steps = 1
    table, text = settings.table(), str(settings)
    for field in dataclasses.fields(settings):
        assert field.metadata.get("doc"), f"{type(settings).__name__}.{field.name} has no meaning"
        assert f"| `{field.name}` |" in table and field.metadata["doc"] in table
        assert field.name in text

"""`@record` behaves like the frozen dataclass it replaced, for what its users rely on."""

from __future__ import annotations

import pytest

from looop.core.record import FrozenError, record


@record
class Move:
    id: str
    prompt: str
    runner: str | None = None

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("empty prompt")
        object.__setattr__(self, "id", self.id.removeprefix("looop-"))


def test_fields_defaults_and_post_init() -> None:
    m = Move("looop-a", prompt="go")
    assert (m.id, m.prompt, m.runner) == ("a", "go", None)
    assert Move(id="a", prompt="go", runner="pi").runner == "pi"
    assert repr(m) == "Move(id='a', prompt='go', runner=None)"
    with pytest.raises(ValueError, match="empty prompt"):
        Move("a", "")


def test_frozen_equal_and_hashable() -> None:
    m = Move("a", "go")
    assert m == Move("looop-a", "go")
    assert m != Move("b", "go")
    assert len({m, Move("a", "go"), Move("a", "go", "pi")}) == 2
    with pytest.raises(FrozenError, match="cannot assign to field 'id'"):
        m.id = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del m.prompt  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"id": "a"}, "missing required argument"),
        (("a", "b", "c", "d"), {}, "takes 3 positional arguments"),
        (("a",), {"id": "b", "prompt": "p"}, "multiple values for argument 'id'"),
        (("a", "p"), {"color": "red"}, "unexpected keyword argument 'color'"),
    ],
)
def test_bad_construction_is_a_type_error(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Move(*args, **kwargs)  # type: ignore[arg-type]


def test_match_by_class_and_position() -> None:
    match Move("a", "go"):
        case Move(ident, "go"):
            assert ident == "a"
        case _:
            pytest.fail("a record did not match its own pattern")

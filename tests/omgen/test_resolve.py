"""C3 resolution: exactly Python's MRO, checked against type() on random hierarchies."""
import pytest
from hypothesis import given, settings, strategies as st

from omgen.resolve import InconsistentHierarchy, c3_linearise


@st.composite
def hierarchies(draw):
    count = draw(st.integers(1, 8))
    bases = {}
    for index in range(count):
        earlier = [f"C{i}" for i in range(index)]
        chosen = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        bases[f"C{index}"] = tuple(chosen)
    return bases


def python_mro(bases):
    classes = {}
    for name, parents in bases.items():
        classes[name] = type(name, tuple(classes[p] for p in parents) or (object,), {})
    return classes


@settings(max_examples=200, deadline=None)
@given(hierarchies())
def test_c3_equals_python_mro(bases):
    try:
        classes = python_mro(bases)
    except TypeError:
        last = list(bases)[-1]
        with pytest.raises(InconsistentHierarchy):
            for name in bases:
                c3_linearise(name, bases)
        return
    for name, cls in classes.items():
        expected = [c.__name__ for c in cls.__mro__ if c is not object]
        assert c3_linearise(name, bases) == expected


def test_inconsistent_hierarchy_names_bases():
    bases = {"X": (), "Y": (), "A": ("X", "Y"), "B": ("Y", "X"), "C": ("A", "B")}
    with pytest.raises(InconsistentHierarchy, match="bases A, B") as info:
        c3_linearise("C", bases)
    assert info.value.cls == "C"


def test_diamond():
    bases = {"O": (), "A": ("O",), "B": ("O",), "D": ("A", "B")}
    assert c3_linearise("D", bases) == ["D", "A", "B", "O"]

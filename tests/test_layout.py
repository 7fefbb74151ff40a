"""Repository layout rules that pytest's default (rootdir) import mode relies on."""
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent


def test_test_module_names_are_unique():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []


def test_no_compiler_module_is_a_monolith():
    """One module per stage: none of omgen/ over ~500 lines (issue 15 split the Python frontend by stage)."""
    long = {p.relative_to(TESTS.parent).as_posix(): n for p in (TESTS.parent / "omgen").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert long == {}


def test_section_rules_live_in_one_module():
    """Both loaders read their syntax and leave the rules of the shared sections to omgen.sections."""
    omgen = TESTS.parent / "omgen"
    for loader in [omgen / "load_yaml.py", *sorted((omgen / "load_python").glob("*.py"))]:
        text = loader.read_text(encoding="utf-8")
        for rule in ("DTYPES", "ROLES", "INPUT_KEYS", "VARIANT_KEYS", "ENTRYPOINT_KEYS", "PART_KEYS"):
            assert rule not in text, f"{loader.name} uses {rule}: apply the rule in omgen/sections.py"

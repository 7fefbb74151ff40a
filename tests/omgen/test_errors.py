"""Bad input: every case gives `file:line:col: error: ...` lines, exit 1, and writes nothing."""
import pytest

from omgen.cli import main

GOOD_HEAD = """
om: bad
config:
  threshold: {type: float, default: 0.5}
inputs:
  x: {type: Tensor, shape: [N, 1], dtype: float}
"""

CASES = {
    "malformed_yaml": ("om: bad\nblocks: [\n", "spec.yaml:3:1: error: malformed YAML"),
    "unknown_top_key": ("om: bad\nblokcs: {}\ncompose: []\nentrypoints: {}\n",
                        "spec.yaml:2:1: error: unknown key 'blokcs' in the spec (did you mean 'blocks'?)"),
    "unknown_term_key": (GOOD_HEAD + "blocks:\n  A:\n    terms:\n      y: {exprr: x}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                         "spec.yaml:9:11: error: unknown key 'exprr' in term 'y' (did you mean 'expr'?)"),
    "wrong_value_type": (GOOD_HEAD.replace("default: 0.5", "default: high") +
                         "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                         "spec.yaml:3:37: error: default of config 'threshold' is 'high', not a float"),
    "bad_type": (GOOD_HEAD + "blocks: {A: {terms: {y: {type: Tensr, expr: x}}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                 "error: type of term 'y': unknown type 'Tensr'"),
    "duplicate_names": (GOOD_HEAD + "functions:\n  x: {args: {}, returns: int, expr: 1}\n"
                        "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                        "spec.yaml:7:3: error: duplicate name 'x' (function) (already defined at "),
    "duplicate_key": (GOOD_HEAD + "blocks:\n  A: {terms: {y: x}}\n  A: {terms: {z: x}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                      "spec.yaml:8:3: error: duplicate key 'A' in 'blocks' (first at line 7)"),
    "unknown_mixin": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nmixins: {oracle: {terms: {y: 2 * x}}}\n"
                      "variants: {v: [oracel]}\nentrypoints: {t: [y]}\n",
                      "spec.yaml:9:12: error: variant 'v' uses unknown mixin 'oracel' (did you mean 'oracle'?)"),
    "unknown_variant_override": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\n"
                                 "variants: {v: {mixins: [], config: {treshold: 1.0}}}\nentrypoints: {t: [y]}\n",
                                 "error: unknown config value 'treshold' (did you mean 'threshold'?)"),
    "syntax_error_in_body": (GOOD_HEAD + "blocks:\n  A:\n    terms:\n      y:\n        body: |\n          a = x *\n"
                             "          return a\ncompose: [A]\nentrypoints: {t: [y]}\n",
                             "spec.yaml:12:11: error: syntax error in body"),
    "unknown_name": (GOOD_HEAD + "blocks:\n  A:\n    terms:\n      y: {expr: x * treshold}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                     "spec.yaml:9:21: error: unknown name 'treshold' in term 'y' (did you mean 'threshold'?)"),
    "shadowing_local": (GOOD_HEAD + "blocks:\n  A:\n    terms:\n      y:\n        body: |\n          threshold = 2\n"
                        "          return x * threshold\ncompose: [A]\nentrypoints: {t: [y]}\n",
                        "spec.yaml:11:11: error: local 'threshold' in term 'y' shadows the config"),
    "cycle": (GOOD_HEAD + "blocks:\n  A:\n    terms:\n      a: {expr: b + x}\n      b: {expr: c * 2}\n      c: {expr: a}\n"
              "compose: [A]\nentrypoints: {t: [a]}\n",
              "spec.yaml:9:7: error: dependency cycle: a (line 9) -> c (line 11) -> b (line 10) -> a (line 9)"),
    "override_nothing": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nmixins: {m: {terms: {yy: x}}}\n"
                         "variants: {v: [m]}\nentrypoints: {t: [y]}\n",
                         "error: mixin 'm' overrides 'yy', which nothing below it defines in variant 'v' (did you mean 'y'? or add 'new: true' to declare a new term)"),
    "super_without_base": (GOOD_HEAD + "blocks: {A: {terms: {y: {expr: super() + x}}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                           "error: super() in 'y' of 'A', but no definition of 'y' lies below it"),
    "inconsistent_mro": (GOOD_HEAD + "blocks:\n  X: {terms: {t: x}}\n  Y: {terms: {u: x}}\n  A: {bases: [X, Y]}\n"
                         "  B: {bases: [Y, X]}\n  C: {bases: [A, B]}\ncompose: [C]\nentrypoints: {t: [t]}\n",
                         "spec.yaml:11:3: error: cannot create a consistent method resolution order (MRO) for bases A, B"),
    "type_change_in_override": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\n"
                                "mixins: {m: {terms: {y: {type: float, expr: 1.0}}}}\nvariants: {v: [m]}\nentrypoints: {t: [y]}\n",
                                "error: 'y' in 'm' has type float but overrides 'A' where it is Tensor"),
    "non_tensor_output": (GOOD_HEAD + "blocks: {A: {terms: {y: {type: float, expr: threshold}}}}\ncompose: [A]\n"
                          "entrypoints: {t: [y]}\n", "error: entrypoint 't' returns 'y' of type float"),
    "term_hides_module_member": (GOOD_HEAD + "blocks: {A: {terms: {eval: x}}}\ncompose: [A]\nentrypoints: {t: [eval]}\n",
                                 "error: term 'eval' would hide the generated module's member 'eval'"),
    "colliding_owner_names": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\n"
                              "mixins: {m-1: {terms: {y: super()}}, m_1: {terms: {y: super()}}}\nentrypoints: {t: [y]}\n",
                              "error: block or mixin 'm_1' and 'm-1' would share its method names (_<term>__<owner>) 'm_1'"),
    "colliding_variant_files": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\n"
                                "variants: {v-1: [], v_1: []}\nentrypoints: {t: [y]}\n",
                                "error: variant 'v_1' and 'v-1' would share its file name 'v_1'"),
    "colliding_entrypoint_classes": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\n"
                                     "entrypoints: {a_b: [y], a__b: [y], session: [y]}\n",
                                     "error: entrypoint 'a__b' and 'a_b' would share its class name 'AB'"),
    "entrypoint_named_session": (GOOD_HEAD + "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nentrypoints: {session: [y]}\n",
                                 "error: entrypoint 'session' would be the class 'Session', a name the generated module"),
    "input_hides_session_member": ("om: bad\ninputs: {bind: {}}\nblocks: {A: {terms: {y: bind}}}\ncompose: [A]\n"
                                   "entrypoints: {t: [y]}\n",
                                   "spec.yaml:2:10: error: input 'bind' would hide the generated Session's member 'bind'"),
    "unused_inconsistent_block": (GOOD_HEAD + "blocks:\n  A: {terms: {y: x}}\n  B: {bases: [A]}\n  C: {bases: [A, B]}\n"
                                  "compose: [A]\nentrypoints: {t: [y]}\n",
                                  "spec.yaml:9:3: error: cannot create a consistent method resolution order (MRO) for bases A, B (in 'C')"),
    "returned_name_of_other_type": (GOOD_HEAD + "blocks: {A: {terms: {y: threshold}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                                    "spec.yaml:6:25: error: 'y' is Tensor but returns 'threshold' of type float"),
    "returned_call_of_other_type": (GOOD_HEAD + "functions:\n  count: {args: {v: Tensor}, returns: int, expr: 'v.numel()'}\n"
                                    "blocks: {A: {terms: {y: 'count(x)'}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                                    "error: 'y' is Tensor but returns function 'count' of type int"),
    "shape_expression_with_symbol": ("om: bad\nconfig: {k: {type: int, default: 2}}\ninputs: {x: {shape: [N, 2 * C]}}\n"
                                     "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                                     "error: shape of input 'x': 'C' in '2 * C' is not an int config value"),
    "shape_with_float_config": ("om: bad\nconfig: {k: {type: float, default: 2.0}}\ninputs: {x: {shape: [N, k]}}\n"
                                "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                                "error: shape of input 'x': config 'k' is a float, not an int"),
    "shape_bad_operator": ("om: bad\nconfig: {k: {type: int, default: 2}}\ninputs: {x: {shape: [N, k / 2]}}\n"
                           "blocks: {A: {terms: {y: x}}}\ncompose: [A]\nentrypoints: {t: [y]}\n",
                           "spec.yaml:3:25: error: shape of input 'x': 'k / 2': only + - * // combine sizes"),
    "missing_include": ("om: bad\ninclude: [nowhere.yaml]\nblocks: {}\ncompose: []\nentrypoints: {}\n",
                        "spec.yaml:2:11: error: cannot read spec file"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_spec_gives_one_clear_line(name, write_spec, tmp_path, capsys):
    text, expected = CASES[name]
    path = write_spec(text)
    out = tmp_path / "out"
    assert main(["compile", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
    for line in err.strip().splitlines():
        assert ": error: " in line or line.endswith("errors") or ": warning: " in line, line
    assert not out.exists(), "nothing may be written when the spec has errors"


def test_all_errors_of_a_stage_are_reported_together(write_spec, capsys):
    path = write_spec("om: bad\nblokcs: {}\ncompose: []\nentrypoints: {}\nvariantz: {}\n")
    assert main(["compile", str(path)]) == 1
    err = capsys.readouterr().err
    assert "'blokcs'" in err and "'variantz'" in err and err.strip().endswith("2 errors")


def test_usage_errors_exit_2_and_a_missing_spec_1(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "missing.yaml")]) == 1  # a data error, as a bad spec is
    with pytest.raises(SystemExit) as info:
        main(["compile"])
    assert info.value.code == 2


@pytest.mark.parametrize("command", [["check"], ["explain", "SPEC", "y"], ["graph", "SPEC"], ["diff", "SPEC", "base", "base"]])
def test_every_command_validates_the_spec(command, write_spec, capsys):
    path = write_spec(GOOD_HEAD + "blocks: {A: {bases: [Nope], terms: {y: x}}}\ncompose: [A]\nentrypoints: {t: [y]}\n")
    argv = [str(path) if part == "SPEC" else part for part in command]
    if "SPEC" not in command:
        argv.append(str(path))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "spec.yaml:6:10: error: 'A' has unknown base 'Nope'" in err and "Traceback" not in err


def test_did_you_mean_ranks_by_edit_distance_and_knows_term_stems():
    from omgen.errors import did_you_mean

    assert did_you_mean("heat_prob", ["heat", "heat_loss", "size"]) == "did you mean 'heat'?"  # the stem
    assert did_you_mean("treshold", ["threshold", "top_k"]) == "did you mean 'threshold'?"
    assert did_you_mean("tresh", ["threshold", "top_k"]) == "did you mean 'threshold'?"
    assert did_you_mean("heat_pred", ["heat_prob", "heat_loss"]) == "did you mean 'heat_prob'?"  # 2 edits, not 4
    assert did_you_mean("xyz", ["abc", "size"]) == ""

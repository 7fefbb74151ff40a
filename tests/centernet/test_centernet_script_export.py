"""Every entrypoint of every variant scripts (same outputs as eager on a realistic batch); torch.export of the
targets (static full-grid Gaussian windows) and of oracle-all infer equals eager (data-dependent windows)."""
import pytest
import torch

import centernet_helpers as H

C = 4


def sample():
    boxes = torch.tensor([[[8.0, 8.0, 40.0, 30.0], [50.0, 20.0, 70.0, 60.0], [-10.0, 40.0, 12.0, 90.0], [0, 0, 0, 0]],
                          [[30.0, 30.0, 31.0, 32.0], [20.0, 4.0, 79.0, 95.0], [1.0, 1.0, 5.0, 9.0], [9, 9, 20, 20]]])
    classes = torch.tensor([[0, 2, 1, -1], [3, 3, 0, 7]])
    return dict(H.predictions(2, C, 24, 20, seed=9), grid=[24, 20], boxes=boxes, classes=classes)


@pytest.mark.parametrize("variant", H.VARIANTS)
def test_every_entrypoint_scripts_and_matches_eager(variant):
    inputs = sample()
    assert set(H.module(variant).ENTRYPOINTS) == {"train", "infer", "targets"}
    for name in ["train", "infer", "targets"]:
        eager = H.entry(variant, name, num_classes=C, top_k=30)
        want, got = H.call(eager, **inputs), H.call(torch.jit.script(eager), **inputs)
        assert want.keys() == got.keys()
        for key in want:
            assert torch.equal(want[key], got[key]), (variant, name, key)


@pytest.mark.parametrize("variant,name", [("base", "targets"), ("oracle_all", "infer")])
def test_export_static_path_equals_eager(variant, name):
    import inspect

    inputs = sample()
    eager = H.entry(variant, name, num_classes=C, top_k=30)
    args = tuple(inputs[p] for p in inspect.signature(eager.forward).parameters)
    program = torch.export.export(eager, args)
    want, got = eager(*args), program.module()(*args)
    for key in want:
        assert torch.equal(want[key], got[key]), key

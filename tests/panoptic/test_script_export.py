"""Every entrypoint of every variant scripts (same outputs as eager), and forward_into (eager and scripted, into a
new dict and into the results it returned) equals forward; an empty batch gives empty results (zero losses);
infer and targets export."""
import inspect

import pytest
import torch

import panoptic_helpers as H


def sample_inputs(n=2, h=20, w=26, num_classes=19, things=(11, 12)):
    logits, center, offsets = H.predictions((n, 1, h, w), 7, num_classes)
    pan = torch.full((n, 1, h, w), 0, dtype=torch.long)
    pan[0, 0, 2:8, 3:12] = things[0] * 1000 + 1
    pan[0, 0, 10:18, 14:25] = things[1] * 1000 + 4
    pan[-1, 0, 0:5, 0:6] = things[0] * 1000  # crowd
    pan[-1, 0, 12:, :] = 255 * 1000
    pan[-1, 0, 5:9, 10:20] = things[0] * 1000 + 2
    center[:, :, 5, 7] = 0.9  # at least one center per image
    out = dict(semantic_logits=logits, center_heatmap=center, offsets=offsets, panoptic=pan)
    targets = H.module("base").Targets(num_classes=num_classes, thing_ids=list(things))(pan)
    out.update({name: targets[key] for key, name in H.TARGET_INPUTS.items()})
    return out


def call(module, inputs):
    names = list(inspect.signature(module.forward).parameters)
    return module(*[inputs[n] for n in names]), names


@pytest.mark.parametrize("variant", H.VARIANTS)
def test_every_entrypoint_scripts_and_matches_eager(variant):
    mod = H.module(variant)
    k = mod.CONFIG["num_classes"]
    things = tuple(mod.CONFIG["thing_ids"][:2])
    inputs = sample_inputs(num_classes=k, things=things)
    assert set(mod.ENTRYPOINTS) == {"train", "infer", "targets"}
    for name, cls in mod.ENTRYPOINTS.items():
        eager = cls(stuff_area=10)
        scripted = torch.jit.script(eager)
        want, names = call(eager, inputs)
        got = scripted(*[inputs[n] for n in names])
        assert set(got) == set(want)
        for key in want:
            assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), (variant, name, key)
        empty = {k: v[:0] for k, v in inputs.items()}  # a batch of no images
        for program in (eager, scripted):
            got = program(*[empty[n] for n in names])
            for key, value in got.items():
                if key.endswith("loss"):
                    assert float(value) == 0.0, (variant, name, key)
                else:  # per-image results and rows (instances): none (oracle slots: at least 1 per image)
                    assert value.dim() == want[key].dim() and value.shape[0] == 0, (variant, name, key, value.shape)
        if not hasattr(eager, "forward_into"):
            continue
        for program in (eager, scripted):  # the held results written image by image, numbered over the batch
            held = program.forward_into({}, *[inputs[n] for n in names])
            for got in (dict(held), program.forward_into(held, *[inputs[n] for n in names])):
                assert set(got) == set(want)
                for key in want:
                    assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), \
                        (variant, name, key, "forward_into")
    torch.jit.script(mod.Session())


def test_infer_exports_with_static_shapes():
    inputs = sample_inputs()
    eager = H.entry("base", "infer")
    args = (inputs["semantic_logits"], inputs["center_heatmap"], inputs["offsets"])
    program = torch.export.export(eager, args, strict=False)
    # the exported program, run on other values of the same shapes, matches eager
    for seed in [7, 8]:
        logits, center, offsets = H.predictions((2, 1, 20, 26), seed)
        want = eager(logits, center, offsets)
        got = program.module()(logits, center, offsets)
        for key in want:
            assert torch.equal(got[key], want[key]), key
        assert got["centers_pred"].shape == (2, 200, 2) and got["center_valid"].dtype == torch.bool


def test_targets_export():
    inputs = sample_inputs()
    eager = H.entry("base", "targets")
    program = torch.export.export(eager, (inputs["panoptic"],), strict=False)
    want = eager(inputs["panoptic"])
    got = program.module()(inputs["panoptic"])
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_export_blockers_are_the_documented_ones():
    """docs/panoptic.md: oracle-centers has one center slot per true instance (a data-dependent count read
    with aten.item in center_topk)."""
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode
    inputs = sample_inputs(h=8, w=8)
    eager = H.entry("oracle_centers", "infer")
    call_args = [inputs[n] for n in inspect.signature(eager.forward).parameters]
    with pytest.raises(GuardOnDataDependentSymNode, match="center_topk"):
        torch.export.export(eager, tuple(call_args), strict=False)


@pytest.mark.parametrize("labelled", ["some", "none"])
def test_train_exports_with_hard_pixel_mining_on_the_static_path(labelled):
    """The exported train entrypoint keeps the int(0.2 V) hardest pixels by a masked full sort (eager: a top-k
    of that size): the same losses up to the order of the sum, and 0 semantic loss when nothing is labelled;
    the program, exported once, follows another image's V (nothing of the first batch's count is baked in)."""
    inputs = sample_inputs()
    if labelled == "none":
        inputs["panoptic"] = torch.full_like(inputs["panoptic"], 255 * 1000)  # every pixel void
    eager = H.entry("base", "train")
    call_args = tuple(inputs[n] for n in inspect.signature(eager.forward).parameters)
    program = torch.export.export(eager, call_args, strict=False).module()
    want, got = eager(*call_args), program(*call_args)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, msg=key)
    if labelled == "none":
        assert float(got["semantic_loss"]) == 0.0
    other = dict(inputs)
    other["panoptic"] = torch.flip(inputs["panoptic"], [2, 3]).clone()
    other["panoptic"][:, :, :2] = 255 * 1000  # other image, other number of labelled pixels
    call_args = tuple(other[n] for n in inspect.signature(eager.forward).parameters)
    torch.testing.assert_close(program(*call_args)["semantic_loss"], eager(*call_args)["semantic_loss"],
                               rtol=1e-5, atol=1e-6)

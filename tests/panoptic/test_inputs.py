"""Bad inputs raise a clear error; odd but valid inputs decode without crashing."""
import numpy as np
import pytest
import torch

import panoptic_helpers as H
import panoptic_reference as ref


def test_wrong_number_of_classes():
    with pytest.raises(ValueError, match=r"input 'semantic_logits': expected shape \[N, num_classes, H, W\]"):
        H.entry("base", "infer")(torch.zeros(1, 18, 4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="semantic_logits"):  # coco expects 133
        H.entry("coco", "infer")(torch.zeros(1, 19, 4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4))


def test_offsets_with_one_channel():
    with pytest.raises(ValueError, match=r"input 'offsets': expected shape \[N, 2, H, W\]"):
        H.entry("base", "infer")(torch.zeros(1, 19, 4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))


def test_float_panoptic_map():
    with pytest.raises(ValueError, match="input 'panoptic': expected dtype int"):
        H.entry("base", "targets")(torch.zeros(1, 1, 4, 4))


def test_mismatched_sizes():
    with pytest.raises(ValueError, match="center_heatmap"):
        H.entry("base", "infer")(torch.zeros(1, 19, 4, 4), torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="panoptic"):
        H.entry("base", "train")(torch.zeros(2, 19, 4, 4), torch.zeros(2, 1, 4, 4), torch.zeros(2, 2, 4, 4),
                                 torch.zeros(1, 1, 4, 4, dtype=torch.long))


@pytest.mark.parametrize("variant", ["base", "oracle_all", "learnable_centers", "oracle_centers"])
def test_odd_truth_maps_run_everywhere(variant):
    """All void, ids above the class range, huge and negative ids, a 1x1 image: every entrypoint runs."""
    maps = [np.full((2, 1, 6, 5), 255 * 1000, np.int64), np.full((1, 1, 1, 1), 11 * 1000 + 3, np.int64),
            np.array([[[[-7, 2 ** 40], [19 * 1000, 11 * 1000 + 999]]]], np.int64)]
    for pan in maps:
        inputs = dict(zip(["semantic_logits", "center_heatmap", "offsets"], H.predictions(pan.shape, 0)))
        inputs["panoptic"] = torch.from_numpy(pan)
        for name, cls in H.module(variant).ENTRYPOINTS.items():
            import inspect
            m = cls(stuff_area=0)
            out = m(*[inputs[n] for n in inspect.signature(m.forward).parameters])
            for v in out.values():
                assert torch.isfinite(v.float()).all()
    out = H.entry("base", "targets")(torch.from_numpy(maps[2]))
    assert out["void_truth"].tolist() == [[[[True, True], [True, False]]]]
    assert out["instance_truth"].tolist() == [[[[-1, -1], [-1, 11999]]]]


def test_dataset_presets():
    coco, syn = H.module("coco").CONFIG, H.module("synthetic").CONFIG
    assert coco["num_classes"] == 133 and coco["thing_ids"] == list(range(80)) and coco["ignore_crowd_in_semantic"]
    assert syn["num_classes"] == 6 and syn["thing_ids"] == [1, 3, 5]
    base = H.module("base").CONFIG
    assert base["num_classes"] == 19 and base["thing_ids"] == list(range(11, 19)) and base["sigma"] == 8.0
    assert (base["top_k"], base["nms_kernel"], base["center_threshold"], base["stuff_area"]) == (200, 7, 0.1, 2048)
    assert (base["center_loss_weight"], base["offset_loss_weight"], base["top_k_percent_pixels"]) == (200.0, 0.01, 0.2)
    assert (base["small_instance_area"], base["small_instance_weight"]) == (4096, 3.0)
    # the synthetic preset against the reference on a synthetic-like map
    cfg = dict(H.CFG, **{k: syn[k] for k in ["num_classes", "thing_ids", "stuff_area", "small_instance_area"]})
    pan = np.full((1, 1, 12, 12), 4 * 1000, np.int64)
    pan[0, 0, 2:5, 2:9] = 3 * 1000 + 1
    pan[0, 0, 6:10, 1:4] = 5 * 1000 + 1
    pan[0, 0, 0:2, :] = 0
    pan[0, 0, 10:, 8:] = 1 * 1000  # crowd ellipses
    got = H.entry("synthetic", "targets")(torch.from_numpy(pan))
    want = ref.targets(pan, cfg)
    for key in ["semantic_truth", "instance_truth", "crowd_truth", "semantic_weights", "offset_weights"]:
        np.testing.assert_array_equal(got[key].numpy(), want[key], err_msg=key)
    np.testing.assert_allclose(got["center_truth"].numpy(), want["center_truth"], atol=1e-6)


def test_center_slots_must_fit_under_label_divisor():
    logits, center, offsets = H.predictions((1, 1, 6, 6), 0)
    with pytest.raises(ValueError, match="label_divisor"):
        H.entry("base", "infer", top_k=20, label_divisor=10)(logits, center, offsets)
    out = H.entry("base", "infer", top_k=9, label_divisor=10)(logits, center, offsets)
    things = out["instance_pred"] >= 0
    assert bool(things.any())
    pan = out["panoptic_pred"][things]
    assert bool(((pan // 10 >= 11) & (pan // 10 <= 18) & (pan % 10 == out["instance_pred"][things] + 1)).all())

"""Shared helpers for the pose OM tests (`import pose_helpers as H`)."""
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location("pose_reference", Path(__file__).resolve().parent / "reference.py")
ref = importlib.util.module_from_spec(_spec)
sys.modules["pose_reference"] = ref
_spec.loader.exec_module(ref)

torch.set_num_threads(1)

import generated.pose as _generated  # noqa: E402

VARIANTS = list(_generated.MODULES.values())
J = 17


def module(variant="base"):
    return importlib.import_module(f"generated.pose.{variant}")


def entry(variant, name, **config):
    return module(variant).ENTRYPOINTS[name](**config)


def call(mod, **inputs):
    """Call an entrypoint with the inputs its forward takes (by name); the size input ``grid`` is read off
    ``heatmap`` when not given, as runtime.om.OM.sizes_from does."""
    if "grid" not in inputs and "heatmap" in inputs:
        inputs["grid"] = list(inputs["heatmap"].shape[2:])
    names = list(inspect.signature(mod.forward).parameters)
    return mod(*[inputs[n] for n in names])


@st.composite
def scenes(draw, max_n=2, max_m=5, joints=J):
    """(boxes [N, M, 4], classes [N, M], keypoints [N, M, J, 3], h, w): people with joints in and around their box
    (some outside the image, some unlabelled, some v = 1), padding (-1), people without labelled joints, and some
    people sharing one box (the same center cell)."""
    n = draw(st.integers(1, max_n))
    h, w = draw(st.integers(2, 16)), draw(st.integers(2, 16))
    s = 4
    m = draw(st.integers(0, max_m))
    boxes = np.zeros((n, m, 4), np.float32)
    classes = np.full((n, m), -1, np.int64)
    kps = np.zeros((n, m, joints, 3), np.float32)
    for i in range(n):
        count = draw(st.integers(0, m))
        for k in range(count):
            if k and draw(st.integers(0, 4)) == 0:
                boxes[i, k] = boxes[i, 0]
            else:
                x1, y1 = draw(st.floats(-8, w * s - 2)), draw(st.floats(-8, h * s - 2))
                boxes[i, k] = (x1, y1, x1 + draw(st.floats(1, 50)), y1 + draw(st.floats(1, 50)))
            classes[i, k] = 0
            x1, y1, x2, y2 = boxes[i, k]
            vis = draw(st.lists(st.sampled_from([0, 1, 2, 2]), min_size=joints, max_size=joints))
            for j in range(joints):
                fx, fy = draw(st.floats(-0.3, 1.3)), draw(st.floats(-0.3, 1.3))
                kps[i, k, j] = (x1 + fx * (x2 - x1), y1 + fy * (y2 - y1), vis[j])
    return torch.from_numpy(boxes), torch.from_numpy(classes), torch.from_numpy(kps), h, w


def reference_targets(boxes, classes, keypoints, h, w, cfg=None):
    cfg = cfg or ref.DEFAULTS
    per = [ref.targets(boxes[i].numpy(), classes[i].numpy(), keypoints[i].numpy(), h, w, cfg)
           for i in range(boxes.shape[0])]
    return {k: np.stack([p[k] for p in per]) for k in per[0]}


def predictions(n, h, w, seed=0, joints=J):
    g = torch.Generator().manual_seed(seed)
    return dict(heatmap=torch.randn(n, 1, h, w, generator=g) * 2, size=torch.rand(n, 2, h, w, generator=g) * 8 + 1,
                offset=torch.rand(n, 2, h, w, generator=g),
                joint_offset=torch.randn(n, 2 * joints, h, w, generator=g) * 2,
                joint_heatmap=torch.randn(n, joints, h, w, generator=g) * 2,
                joint_sub_offset=torch.rand(n, 2, h, w, generator=g))


sys.modules["pose_helpers"] = sys.modules[__name__]

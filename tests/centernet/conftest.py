"""Shared strategies and helpers for the CenterNet OM tests (`import centernet_helpers as H`)."""
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

# tests/centernet/reference.py under a unique module name (`import centernet_reference as ref`)
_spec = importlib.util.spec_from_file_location("centernet_reference", Path(__file__).resolve().parent / "reference.py")
ref = importlib.util.module_from_spec(_spec)
sys.modules["centernet_reference"] = ref
_spec.loader.exec_module(ref)

torch.set_num_threads(1)

import generated.centernet as _generated  # noqa: E402

VARIANTS = list(_generated.MODULES.values())  # every variant the spec declares (module names)


def module(variant="base"):
    return importlib.import_module(f"generated.centernet.{variant}")


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
def box(draw, img_h, img_w, num_classes):
    """One annotation (x1, y1, x2, y2, class): ordinary, tiny, border-cut, or outside the image."""
    kind = draw(st.sampled_from(["box", "box", "box", "tiny", "border", "outside"]))
    if kind == "tiny":
        x1, y1 = draw(st.floats(0, img_w - 1)), draw(st.floats(0, img_h - 1))
        x2, y2 = x1 + draw(st.floats(0.01, 3)), y1 + draw(st.floats(0.01, 3))
    elif kind == "border":
        x1, y1 = draw(st.floats(-40, img_w)), draw(st.floats(-40, img_h))
        x2, y2 = x1 + draw(st.floats(1, 80)), y1 + draw(st.floats(1, 80))
    elif kind == "outside":
        x1 = draw(st.sampled_from([-60.0, float(img_w) + 1]))
        y1 = draw(st.floats(-10, img_h))
        x2, y2 = x1 + draw(st.floats(1, 50)), y1 + draw(st.floats(1, 50))
    else:
        x1, y1 = draw(st.floats(0, img_w - 2)), draw(st.floats(0, img_h - 2))
        x2, y2 = draw(st.floats(x1 + 1, img_w)), draw(st.floats(y1 + 1, img_h))
    return x1, y1, x2, y2, draw(st.integers(0, num_classes - 1))


@st.composite
def annotations(draw, num_classes=3, max_n=2, max_m=12, stacked=True):
    """(boxes [N, M, 4] float32, classes [N, M] int64, h, w): per image 0..max_m boxes, padded with -1; some
    scenes stack several boxes on one center (overlapping centers)."""
    n = draw(st.integers(1, max_n))
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    s = 4
    m = draw(st.integers(0, max_m))
    boxes = np.zeros((n, m, 4), np.float32)
    classes = np.full((n, m), -1, np.int64)
    for i in range(n):
        items = draw(st.lists(box(h * s, w * s, num_classes), max_size=m))
        if stacked and items and draw(st.booleans()):  # copies of one box: same center, maybe another class
            x1, y1, x2, y2, _ = items[0]
            items[1:] = [(x1, y1, x2, y2, draw(st.integers(0, num_classes - 1))) for _ in items[1:]]
        for j, (x1, y1, x2, y2, c) in enumerate(items):
            boxes[i, j] = (x1, y1, x2, y2)
            classes[i, j] = c
    return torch.from_numpy(boxes), torch.from_numpy(classes), h, w


def reference_targets(boxes, classes, h, w, cfg, radius_fn=None):
    """Reference targets of a batch, stacked like the entrypoint's outputs."""
    fn = radius_fn or ref.radius_published
    per = [ref.targets(boxes[i].numpy(), classes[i].numpy(), h, w, cfg, fn) for i in range(boxes.shape[0])]
    return {k: np.stack([p[k] for p in per]) for k in per[0]}


def predictions(n, c, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(heatmap=torch.randn(n, c, h, w, generator=g) * 2, size=torch.rand(n, 2, h, w, generator=g) * 8,
                offset=torch.rand(n, 2, h, w, generator=g), class_size=torch.rand(n, c, 2, h, w, generator=g) * 8)


sys.modules["centernet_helpers"] = sys.modules[__name__]

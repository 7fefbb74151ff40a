"""Shared strategies and helpers for the Panoptic-DeepLab OM tests."""
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# tests/panoptic/reference.py under a unique module name (test files: `import panoptic_reference as ref`)
_spec = importlib.util.spec_from_file_location("panoptic_reference", Path(__file__).resolve().parent / "reference.py")
ref = importlib.util.module_from_spec(_spec)
sys.modules["panoptic_reference"] = ref
_spec.loader.exec_module(ref)

torch.set_num_threads(1)

CFG = dict(ref.CITYSCAPES)
DIV = CFG["label_divisor"]
THINGS = CFG["thing_ids"]
STUFF = [c for c in range(CFG["num_classes"]) if c not in THINGS]
VARIANTS = ["base", "oracle_semantics", "oracle_centers", "oracle_offsets", "oracle_all", "learnable_centers",
            "given_targets", "coco", "synthetic"]
# targets entrypoint output -> given-targets input
TARGET_INPUTS = {"semantic_truth": "semantic_target", "center_truth": "center_target", "offset_truth": "offset_target",
                 "semantic_weights": "semantic_weight_target", "center_weights": "center_weight_target",
                 "offset_weights": "offset_weight_target"}


def module(variant):
    return importlib.import_module(f"generated.panoptic.{variant}")


def session(variant="base", **config):
    return module(variant).Session(**config)


def entry(variant, name, **config):
    mod = module(variant)
    return mod.ENTRYPOINTS[name](**config)


@st.composite
def rects(draw, h, w):
    """One rectangle: (kind, value) painted over [y0:y1, x0:x1]; may be cut by the border."""
    kind = draw(st.sampled_from(["thing", "thing", "thing", "thing_px", "stuff", "crowd", "void", "odd"]))
    if kind == "thing_px":  # 1-pixel instance
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        y1, x1 = y0 + 1, x0 + 1
        kind = "thing"
    else:
        y0, x0 = draw(st.integers(-3, h - 1)), draw(st.integers(-3, w - 1))
        y1, x1 = y0 + draw(st.integers(1, h + 3)), x0 + draw(st.integers(1, w + 3))
    if kind == "thing":
        value = draw(st.sampled_from(THINGS)) * DIV + draw(st.integers(1, 6))  # repeated ids: split instances
    elif kind == "stuff":
        value = draw(st.sampled_from(STUFF)) * DIV + draw(st.sampled_from([0, 0, 0, 5]))
    elif kind == "crowd":
        value = draw(st.sampled_from(THINGS)) * DIV
    elif kind == "void":
        value = 255 * DIV + draw(st.sampled_from([0, 7]))
    else:  # ids outside the class range: void as well
        value = draw(st.sampled_from([-1, 19 * DIV, 300 * DIV + 5, 2 ** 40]))
    return value, max(y0, 0), max(x0, 0), max(y1, 0), max(x1, 0)


@st.composite
def panoptic_maps(draw, max_n=2, max_side=18, max_rects=10):
    n = draw(st.integers(1, max_n))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    pan = np.zeros((n, 1, h, w), np.int64)
    for i in range(n):
        pan[i] = draw(st.sampled_from([s * DIV for s in STUFF[:3]] + [255 * DIV]))
        for value, y0, x0, y1, x1 in draw(st.lists(rects(h, w), max_size=max_rects)):
            pan[i, 0, y0:y1, x0:x1] = value
    return pan


def predictions(pan_shape, seed, num_classes=19):
    """Random network outputs; offsets on a 0.5 grid so that float32 votes are exact."""
    n, _, h, w = pan_shape
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, num_classes, h, w, generator=g) * 2
    center = torch.rand(n, 1, h, w, generator=g)
    offsets = torch.randint(-16, 17, (n, 2, h, w), generator=g).float() / 2
    return logits, center, offsets


def many_instances(n_inst=230, side=48, seed=0):
    """One image with n_inst 1-2 pixel instances on a 3-pixel grid in random order and classes (distinct
    centroids), some instances split in two parts, a crowd and a void strip."""
    rng = np.random.default_rng(seed)
    pan = np.full((1, 1, side, side), STUFF[int(rng.integers(len(STUFF)))] * DIV, np.int64)
    cells = [(y, x) for y in range(0, side - 3, 3) for x in range(0, side - 1, 3)]
    order = rng.permutation(len(cells))[:n_inst]
    for k, c in enumerate(order):
        y, x = cells[c]
        cls = THINGS[int(rng.integers(len(THINGS)))]
        pan[0, 0, y, x] = cls * DIV + 1 + k
        if rng.random() < 0.5:
            pan[0, 0, y, x + 1] = pan[0, 0, y, x]
    pan[0, 0, -2:, :5] = THINGS[0] * DIV  # crowd
    pan[0, 0, -2:, 5:9] = 255 * DIV  # void
    return pan


@pytest.fixture
def cfg():
    return dict(CFG)

# test files: `import panoptic_helpers as H` (this module), unique across the test tree
sys.modules["panoptic_helpers"] = sys.modules[__name__]

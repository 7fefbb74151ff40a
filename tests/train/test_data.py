"""Tests of train.data: synthetic generator, COCO / Cityscapes loaders,
augmentation, collation and error messages."""

from __future__ import annotations

import functools
import json
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from train.data import (
    CityscapesPanoptic,
    CocoPanoptic,
    DatasetError,
    PanopticAugment,
    collate_panoptic,
    hflip,
    pad_to,
    random_crop,
    rescale,
)
from train.data import synthetic

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"
VOID = 255 * 1000


def png_ids_by_hand(path: Path) -> np.ndarray:
    """Independent decoder: PIL + numpy, id = R + 256 G + 256^2 B."""
    a = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    return a[..., 0] + 256 * a[..., 1] + 65536 * a[..., 2]


# ---------------------------------------------------------------------------
# synthetic dataset → COCO loader round trip


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthetic.write_dataset(out, n_train=6, n_val=2, size=(64, 80), seed=3, image_format="png", crowd_prob=0.5, void_prob=0.5)
    return out


def expected_panoptic(scene: synthetic.Scene, divisor: int = 1000) -> np.ndarray:
    """Our convention, computed from the generator's own drawing."""
    train_id = {c["id"]: t for t, c in enumerate(synthetic.CATEGORIES)}
    isthing = {c["id"]: bool(c["isthing"]) for c in synthetic.CATEGORIES}
    out = np.full(scene.ids.shape, VOID, np.int64)
    count: dict[int, int] = {}
    for s in scene.segments:
        m = scene.ids == s["id"]
        t = train_id[s["category_id"]]
        if isthing[s["category_id"]] and not s["iscrowd"]:
            count[t] = count.get(t, 0) + 1
            out[m] = t * divisor + count[t]
        else:
            out[m] = t * divisor
    return out


def test_synthetic_roundtrip_matches_generator(synth):
    for split, n in (("train", 6), ("val", 2)):
        ds = CocoPanoptic.from_root(synth, split)
        assert len(ds) == n
        data = json.loads((synth / "annotations" / f"panoptic_{split}.json").read_text())
        for i in range(n):
            scene = synthetic.render_indexed(3, split, i, synthetic.SyntheticConfig(height=64, width=80, crowd_prob=0.5, void_prob=0.5))
            ids = png_ids_by_hand(synth / "annotations" / f"panoptic_{split}" / f"{i:06d}.png")
            np.testing.assert_array_equal(ids, scene.ids)
            img = np.asarray(Image.open(synth / split / f"{i:06d}.png").convert("RGB"))
            np.testing.assert_array_equal(img, scene.image)
            # JSON segments: area and bbox agree with the PNG
            segs = data["annotations"][i]["segments_info"]
            assert segs == scene.segments
            for s in segs:
                ys, xs = np.nonzero(ids == s["id"])
                assert s["area"] == len(ys)
                assert s["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert set(np.unique(ids)) <= {0} | {s["id"] for s in segs}
            sample = ds[i]
            assert sample["image"].dtype == torch.uint8 and sample["image"].shape == (3, 64, 80)
            assert sample["panoptic"].dtype == torch.int64 and sample["panoptic"].shape == (1, 64, 80)
            np.testing.assert_array_equal(sample["image"].permute(1, 2, 0).numpy(), scene.image)
            np.testing.assert_array_equal(sample["panoptic"][0].numpy(), expected_panoptic(scene))


def test_synthetic_loader_partition_is_the_drawn_partition(synth):
    """Each drawn segment maps to exactly one of our ids and vice versa (except crowd/void merges)."""
    ds = CocoPanoptic.from_root(synth, "train")
    by_name = dict(zip(ds.class_names, range(ds.num_classes)))
    assert ds.thing_train_ids == (by_name["ellipse"], by_name["rectangle"], by_name["triangle"]) == (1, 3, 5)
    assert ds.category_to_train_id == {1: 0, 2: 1, 5: 2, 7: 3, 9: 4, 12: 5}
    for i in range(len(ds)):
        ids = png_ids_by_hand(synth / "annotations" / "panoptic_train" / f"{i:06d}.png")
        pan = ds[i]["panoptic"][0].numpy()
        assert np.all((ids == 0) == (pan == VOID))
        for sid in np.unique(ids[ids > 0]):
            vals = np.unique(pan[ids == sid])
            assert len(vals) == 1
            # no other drawn segment shares a thing instance id
            if vals[0] % 1000:
                assert np.all(ids[pan == vals[0]] == sid)


def test_synthetic_content_crowd_void_small_and_all_classes():
    cfg = synthetic.SyntheticConfig(height=96, width=96, crowd_prob=1.0, void_prob=1.0)
    cats, small, counts = set(), 0, []
    for i in range(12):
        sc = synthetic.render_indexed(0, "train", i, cfg)
        assert sc.image.shape == (96, 96, 3) and sc.image.dtype == np.uint8
        assert sum(s["iscrowd"] for s in sc.segments) == 1  # crowd_prob = 1: exactly one crowd segment
        assert (sc.ids == 0).any()  # void clutter
        things = [s for s in sc.segments if s["category_id"] in (2, 7, 12) and not s["iscrowd"]]
        assert all(s["area"] >= cfg.min_area for s in things)
        small += sum(s["area"] < 64 for s in things)
        counts.append(len(things))
        cats |= {s["category_id"] for s in sc.segments}
    assert cats == {1, 2, 5, 7, 9, 12}
    assert small >= 5
    assert len(set(counts)) > 2
    cfg0 = synthetic.SyntheticConfig(height=64, width=64, crowd_prob=0.0, void_prob=0.0, min_area=1)
    for i in range(5):
        sc = synthetic.render_indexed(1, "val", i, cfg0)
        assert not any(s["iscrowd"] for s in sc.segments)
        assert not (sc.ids == 0).any()


def test_synthetic_deterministic_and_independent_of_count(tmp_path):
    synthetic.write_dataset(tmp_path / "a", 4, 1, (48, 48), seed=5)
    synthetic.write_dataset(tmp_path / "b", 2, 1, (48, 48), seed=5)
    synthetic.write_dataset(tmp_path / "c", 2, 1, (48, 48), seed=6)
    ja = json.loads((tmp_path / "a/annotations/panoptic_train.json").read_text())
    jb = json.loads((tmp_path / "b/annotations/panoptic_train.json").read_text())
    jc = json.loads((tmp_path / "c/annotations/panoptic_train.json").read_text())
    assert ja["annotations"][:2] == jb["annotations"]
    assert ja["annotations"][:2] != jc["annotations"]
    for name in ("train/000001.jpg", "annotations/panoptic_train/000001.png", "val/000000.jpg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # train and val streams differ
    assert (tmp_path / "a/train/000000.jpg").read_bytes() != (tmp_path / "a/val/000000.jpg").read_bytes()


def test_synthetic_cli(tmp_path, capsys):
    assert synthetic.main(["--out", str(tmp_path), "--train", "2", "--val", "1", "--size", "48x64", "--seed", "1"]) == 0
    data = json.loads((tmp_path / "annotations/panoptic_val.json").read_text())
    assert [(im["height"], im["width"]) for im in data["images"]] == [(48, 64)]
    assert {c["id"] for c in data["categories"]} == {1, 2, 5, 7, 9, 12}
    assert len(list((tmp_path / "train").glob("*.jpg"))) == 2
    ds = CocoPanoptic.from_root(tmp_path, "train")
    assert ds[1]["panoptic"].shape == (1, 48, 64)
    assert "wrote 2 train + 1 val images of 48x64" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path), "--size", "4"])


# ---------------------------------------------------------------------------
# fixtures


def test_fixtures_are_up_to_date(tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        import make_fixtures
    finally:
        sys.path.remove(str(HERE))
    make_fixtures.main(tmp_path)
    committed = sorted(p.relative_to(FIX) for p in FIX.rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert committed == fresh
    for rel in committed:
        a, b = FIX / rel, tmp_path / rel
        if rel.suffix == ".json":
            assert json.loads(a.read_text()) == json.loads(b.read_text()), rel
        else:
            x = np.asarray(Image.open(a).convert("RGB")).astype(int)
            y = np.asarray(Image.open(b).convert("RGB")).astype(int)
            tol = 3 if rel.suffix == ".jpg" else 0  # JPEG codecs may differ by a level
            assert x.shape == y.shape and np.abs(x - y).max() <= tol, rel


def test_cityscapes_fixture_train_ids():
    ds = CityscapesPanoptic(FIX / "cityscapes", "val")
    assert ds.num_classes == 19
    assert ds.thing_train_ids == tuple(range(11, 19))
    assert ds.category_to_train_id[7] == 0 and ds.category_to_train_id[26] == 13 and ds.category_to_train_id[33] == 18
    assert [ds.records[i].image_id for i in range(2)] == ["frankfurt_000000_000294", "lindau_000001_000019"]
    f = ds[0]["panoptic"][0].numpy()
    assert f.shape == (32, 64)
    # (y, x) -> expected id, read off make_fixtures.CITYSCAPES_SCENES by hand
    expected = {
        (2, 10): 10 * 1000,  # sky
        (12, 2): 2 * 1000,  # building
        (31, 2): 0,  # road
        (19, 5): 13 * 1000 + 1,  # first car
        (25, 16): 13 * 1000 + 2,  # second car, on top of the first
        (21, 10): 13 * 1000 + 1,
        (15, 42): 11 * 1000 + 1,  # person
        (18, 55): 13 * 1000,  # cargroup: crowd, instance 0
        (30, 40): VOID,  # ego vehicle
    }
    for (y, x), v in expected.items():
        assert f[y, x] == v, (y, x)
    assert set(np.unique(f)) == set(expected.values())
    lin = ds[1]["panoptic"][0].numpy()
    assert set(np.unique(lin)) == {8000, 1000, 18001, 12001}
    assert lin[10, 10] == 12001 and lin[20, 7] == 18001
    img = ds[0]["image"]
    assert img.shape == (3, 32, 64) and img.dtype == torch.uint8
    # the road is painted in its Cityscapes colour (128, 64, 128) ± noise: RGB order kept
    assert np.abs(img[:, 31, 2].numpy().astype(int) - [128, 64, 128]).max() < 30


def test_coco_fixture_ids():
    ds = CocoPanoptic.from_root(FIX / "coco", "val2017")
    assert ds.category_to_train_id == {1: 0, 3: 1, 149: 2, 187: 3}
    assert ds.thing_train_ids == (0, 1)
    a = ds[0]["panoptic"][0].numpy()
    assert ds[0]["image_id"] == 139
    assert a[5, 5] == 3000 and a[31, 0] == 2000  # sky, road
    assert a[13, 5] == 1 and a[20, 12] == 2 and a[20, 30] == 1001  # person A, person B, car
    assert a[22, 44] == 0  # crowd person: class 0, instance 0
    assert a[1, 45] == VOID
    b = ds[1]["panoptic"][0].numpy()
    assert b[5, 5] == 1001 and b[15, 30] == 1002 and b[15, 18] == 1 and b[0, 39] == 2000


def test_label_divisor_and_ignore_label_are_used():
    ds = CityscapesPanoptic(FIX / "cityscapes", "val", label_divisor=256, ignore_label=100)
    f = ds[0]["panoptic"][0].numpy()
    assert f[25, 16] == 13 * 256 + 2 and f[30, 40] == 100 * 256 and ds.void_id == 25600


# ---------------------------------------------------------------------------
# errors name the file


@pytest.fixture()
def coco_copy(tmp_path) -> Path:
    dst = tmp_path / "coco"
    shutil.copytree(FIX / "coco", dst)
    return dst


def _load_all(root: Path):
    ds = CocoPanoptic.from_root(root, "val2017")
    return [ds[i] for i in range(len(ds))]


def _edit_json(root: Path, fn) -> None:
    p = root / "annotations/panoptic_val2017.json"
    data = json.loads(p.read_text())
    fn(data)
    p.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "case, culprit",
    [
        ("missing_image", "val2017/000000000285.jpg"),
        ("corrupt_image", "val2017/000000000285.jpg"),
        ("missing_png", "panoptic_val2017/000000000139.png"),
        ("corrupt_png", "panoptic_val2017/000000000139.png"),
        ("gray_png", "panoptic_val2017/000000000139.png"),
        ("missing_json", "panoptic_val2017.json"),
        ("malformed_json", "panoptic_val2017.json"),
        ("unknown_segment_in_png", "panoptic_val2017/000000000139.png"),
        ("unknown_category", "panoptic_val2017.json"),
        ("size_mismatch", "panoptic_val2017/000000000285.png"),
        ("unknown_image_id", "panoptic_val2017.json"),
    ],
)
def test_errors_name_the_file(coco_copy, case, culprit):
    ann = coco_copy / "annotations"
    if case == "missing_image":
        (coco_copy / culprit).unlink()
    elif case == "corrupt_image":
        (coco_copy / culprit).write_bytes(b"\xff\xd8 not really a jpeg")
    elif case == "missing_png":
        (ann / culprit).unlink()
    elif case == "corrupt_png":
        (ann / culprit).write_bytes((ann / culprit).read_bytes()[:20])
    elif case == "gray_png":
        Image.fromarray(np.zeros((32, 48), np.uint8)).save(ann / culprit)
    elif case == "missing_json":
        (ann / culprit).unlink()
    elif case == "malformed_json":
        (ann / culprit).write_text('{"images": [,]}')
    elif case == "unknown_segment_in_png":
        _edit_json(coco_copy, lambda d: d["annotations"][0]["segments_info"].pop(1))
    elif case == "unknown_category":
        _edit_json(coco_copy, lambda d: d["annotations"][1]["segments_info"][0].update(category_id=999))
    elif case == "size_mismatch":
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(ann / culprit)
    elif case == "unknown_image_id":
        _edit_json(coco_copy, lambda d: d["annotations"][1].update(image_id=4242))
    with pytest.raises(DatasetError) as ei:
        _load_all(coco_copy)
    msg = str(ei.value)
    assert "\n" not in msg
    path = msg.split(": ", 1)[0]
    assert path.endswith(culprit), msg
    assert isinstance(ei.value, ValueError)


def test_error_messages_say_what_is_wrong(coco_copy):
    _edit_json(coco_copy, lambda d: d["annotations"][0]["segments_info"].pop(1))
    with pytest.raises(DatasetError, match=r"segment id \d+ .*not in segments_info of image 139"):
        _load_all(coco_copy)
    (coco_copy / "val2017/000000000139.jpg").unlink()
    with pytest.raises(DatasetError, match="image file not found"):
        _load_all(coco_copy)
    with pytest.raises(DatasetError, match="category_id 999"):
        _edit_json(coco_copy, lambda d: d["annotations"][1]["segments_info"][0].update(category_id=999))
        _load_all(coco_copy)


def test_cityscapes_rejects_foreign_category(tmp_path):
    dst = tmp_path / "cs"
    shutil.copytree(FIX / "cityscapes", dst)
    p = dst / "gtFine/cityscapes_panoptic_val.json"
    data = json.loads(p.read_text())
    data["categories"].append({"id": 4, "name": "static", "isthing": 0, "color": [0, 0, 0]})
    p.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"cityscapes_panoptic_val\.json: category id 4"):
        CityscapesPanoptic(dst, "val")
    (dst / "leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit.png").unlink()
    data["categories"].pop()
    p.write_text(json.dumps(data))
    ds = CityscapesPanoptic(dst, "val")
    with pytest.raises(DatasetError, match=r"leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit\.png: image file not found"):
        ds[1]


# ---------------------------------------------------------------------------
# augmentation


def _toy(h: int = 20, w: int = 26, seed: int = 0):
    """A panoptic map of blocks and an image whose colour encodes the id."""
    rng = np.random.default_rng(seed)
    pan = np.zeros((h, w), np.int64)
    ids = [0, 2000, 1001, 1002, 3001, VOID]
    for k in range(8):
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        pan[y : y + rng.integers(4, 10), x : x + rng.integers(4, 10)] = ids[k % len(ids)]
    palette = {i: np.array([(i * 37) % 256, (i // 7) % 256, (i * 11) % 251], np.uint8) for i in ids}
    img = np.stack([palette[v] for v in pan.ravel()]).reshape(h, w, 3)
    return img, pan, palette


def test_flip_twice_is_identity():
    img, pan, _ = _toy()
    i2, p2 = hflip(*hflip(img, pan))
    np.testing.assert_array_equal(i2, img)
    np.testing.assert_array_equal(p2, pan)
    i1, p1 = hflip(img, pan)
    np.testing.assert_array_equal(p1[:, 0], pan[:, -1])
    np.testing.assert_array_equal(i1[:, 0], img[:, -1])


def test_rescale_integer_factor_is_pixel_replication():
    img, pan, _ = _toy()
    i2, p2 = rescale(img, pan, 2.0)
    np.testing.assert_array_equal(p2, np.repeat(np.repeat(pan, 2, 0), 2, 1))
    assert i2.shape == (40, 52, 3)
    i3, p3 = rescale(img, pan, 0.5)
    # output centre i + 0.5 maps to input 2i + 1: nearest (floor) picks the odd pixels
    np.testing.assert_array_equal(p3, pan[1::2, 1::2])
    assert i3.shape == (10, 13, 3)


def test_pad_fills_void_and_image_value():
    img, pan, _ = _toy(8, 10)
    i, p = pad_to(img, pan, (12, 11), void_id=VOID, image_pad=(1, 2, 3))
    assert p.shape == (12, 11) and i.shape == (12, 11, 3)
    np.testing.assert_array_equal(p[:8, :10], pan)
    assert (p[8:] == VOID).all() and (p[:, 10:] == VOID).all()
    assert (i[8:] == [1, 2, 3]).all()
    im, _ = pad_to(img, pan, (9, 10), image_pad="mean")
    np.testing.assert_array_equal(im[8, 0], np.round(img.reshape(-1, 3).mean(0)))


def test_crop_at_scale_one_is_a_window_of_the_padded_input():
    img, pan, _ = _toy()
    aug = PanopticAugment(crop_size=(16, 30), scale_range=(1.0, 1.0), flip_prob=0.0)
    pi, pp = pad_to(img, pan, (16, 30), void_id=VOID)
    for s in range(6):
        oi, op = aug(img, pan, np.random.default_rng(s))
        hits = [
            (y, x)
            for y in range(pp.shape[0] - 15)
            for x in range(pp.shape[1] - 29)
            if np.array_equal(pp[y : y + 16, x : x + 30], op) and np.array_equal(pi[y : y + 16, x : x + 30], oi)
        ]
        assert hits


def _grid_toy(seed: int, h: int = 24, w: int = 30):
    """Axis-aligned cells 5-9 px wide with random ids; image colour encodes the id."""
    rng = np.random.default_rng(seed)
    ids = [0, 2000, 1001, 1002, 3001, VOID]
    ys = np.cumsum(rng.integers(5, 10, h))
    xs = np.cumsum(rng.integers(5, 10, w))
    cell = rng.integers(0, len(ids), (h, w))
    row = np.searchsorted(ys, np.arange(h), side="right")
    col = np.searchsorted(xs, np.arange(w), side="right")
    pan = np.asarray(ids, np.int64)[cell[row[:, None], col[None, :]]]
    palette = {i: np.array([(i * 37) % 256, (i // 7) % 256, (i * 11) % 251], np.uint8) for i in ids}
    img = np.stack([palette[v] for v in pan.ravel()]).reshape(h, w, 3)
    return img, pan, palette


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    lo=st.floats(0.25, 2.0),
    span=st.floats(0.0, 1.0),
    ch=st.integers(4, 40),
    cw=st.integers(4, 40),
)
def test_augment_never_invents_ids_and_keeps_image_aligned(seed, lo, span, ch, cw):
    img, pan, palette = _grid_toy(seed)
    hi = min(2.0, lo + span)
    aug = PanopticAugment(crop_size=(ch, cw), scale_range=(lo, hi), void_id=VOID, image_pad=0)
    oi, op = aug(img, pan, np.random.default_rng(seed))
    assert oi.shape == (ch, cw, 3) and op.shape == (ch, cw) and oi.dtype == np.uint8 and op.dtype == np.int64
    assert set(np.unique(op)) <= set(np.unique(pan)) | {VOID}
    assert _aligned(oi, op, palette)


def _aligned(oi: np.ndarray, op: np.ndarray, palette) -> bool:
    """Image and labels agree: for scale <= 2 the bilinear support of an output
    pixel lies between the nearest-label sources of its neighbours, so a pixel
    whose 3x3 label neighbourhood is uniform (and not void/padding) must show
    exactly its id's colour."""
    ch, cw = op.shape
    colors = np.stack([palette[v] if v != VOID else np.zeros(3, np.uint8) for v in op.ravel()]).reshape(ch, cw, 3)
    diff = np.abs(oi.astype(int) - colors.astype(int)).max(-1)
    c = op[1:-1, 1:-1]
    uniform = np.ones_like(c, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            uniform &= op[1 + dy : ch - 1 + dy, 1 + dx : cw - 1 + dx] == c
    check = uniform & (c != VOID)
    return bool((diff[1:-1, 1:-1][check] <= 1).all())


def test_alignment_check_catches_misalignment():
    """_aligned is strong enough to see an image flipped or shifted without its labels."""
    img, pan, palette = _grid_toy(0)
    aug = PanopticAugment(crop_size=(20, 20), scale_range=(1.3, 1.3), flip_prob=0.0)
    oi, op = aug(img, pan, np.random.default_rng(0))
    assert _aligned(oi, op, palette)
    assert not _aligned(oi[:, ::-1], op, palette)
    assert not _aligned(np.roll(oi, 2, axis=0), op, palette)


def test_augment_deterministic_for_numpy_and_torch_generators():
    img, pan, _ = _toy()
    aug = PanopticAugment(crop_size=(12, 12), scale_range=(0.5, 2.0))
    a = aug(img, pan, np.random.default_rng(7))
    b = aug(img, pan, np.random.default_rng(7))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    t1 = aug(img, pan, torch.Generator().manual_seed(3))
    t2 = aug(img, pan, torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(t1[1], t2[1])
    outs = {aug(img, pan, np.random.default_rng(s))[1].tobytes() for s in range(8)}
    assert len(outs) > 4


def test_random_crop_rejects_small_input():
    img, pan, _ = _toy(8, 8)
    with pytest.raises(ValueError, match="pad first"):
        random_crop(img, pan, (10, 4), np.random.default_rng(0))
    with pytest.raises(ValueError):
        PanopticAugment(scale_range=(2.0, 1.0))


# ---------------------------------------------------------------------------
# dataset transform + collate


def test_dataset_transform_and_collate(synth):
    aug = PanopticAugment(crop_size=(48, 48), scale_range=(0.75, 1.5), void_id=VOID)
    ds = CocoPanoptic.from_root(synth, "train", transform=aug, seed=1)
    s0 = ds[2]
    assert torch.equal(ds[2]["panoptic"], s0["panoptic"]) and torch.equal(ds[2]["image"], s0["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["panoptic"], s0["panoptic"]) or not torch.equal(ds[2]["image"], s0["image"])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate_panoptic, num_workers=0)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 48, 48) and batch["image"].dtype == torch.uint8
    assert batch["panoptic"].shape == (4, 1, 48, 48) and batch["panoptic"].dtype == torch.int64
    assert batch["image_id"] == [0, 1, 2, 3]
    ds.set_epoch(1)
    assert torch.equal(batch["panoptic"][2], ds[2]["panoptic"])
    # picklable for DataLoader workers; a copy draws the same augmentation
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3]["panoptic"], ds[3]["panoptic"])


def test_collate_mixed_sizes():
    ds = CityscapesPanoptic(FIX / "cityscapes", "val")
    with pytest.raises(ValueError, match="sizes differ"):
        collate_panoptic([ds[0], ds[1]])
    b = functools.partial(collate_panoptic, void_id=ds.void_id)([ds[0], ds[1]])
    assert b["image"].shape == (2, 3, 32, 64) and b["panoptic"].shape == (2, 1, 32, 64)
    assert torch.equal(b["panoptic"][1, :, :24, :32], ds[1]["panoptic"])
    assert (b["panoptic"][1, :, 24:] == VOID).all() and (b["panoptic"][1, :, :, 32:] == VOID).all()
    assert (b["image"][1, :, :, 32:] == 0).all()

"""CenterNet training and evaluation through the generic runtime (train/centernet.py)."""
import json
import re

import numpy as np
import pytest
import torch

from generated.centernet import base as cn_base
from runtime.detection_eval import BoxAP
from runtime.om import load_om
from train import centernet as C
from train.data import CocoPanoptic
from train.data.detection import CocoDetection, PanopticDetection, boxes_from_panoptic, collate_detection
from train.data.panoptic import read_panoptic_png
from train.data.synthetic import write_dataset
from train.model.centernet import HEATMAP_BIAS, CenterNet


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("cn_data")
    write_dataset(root, 16, 8, (64, 64), seed=3, crowd_prob=0.5)
    return root


def tiny_config(root, out, **over):
    cfg = {
        "seed": 0, "out_dir": str(out), "threads": 1,
        "om": {"spec": "specs/centernet.yaml", "variant": "base", "targets": "inline", "config": {}},
        "data": {"dataset": "coco_panoptic", "root": str(root), "train_split": "train", "val_split": "val",
                 "crop_size": [64, 64], "scale_range": [0.9, 1.1], "flip_prob": 0.5},
        "model": {"backbone": "resnet18", "backbone_width": 8, "neck_channels": 16, "head_channels": 16},
        "train": {"steps": 3, "batch_size": 4, "lr": 1e-3, "workers": 0, "log_every": 1, "tensorboard": False,
                  "progress": False},
        "eval": {"batch_size": 8},
    }
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v}
    return cfg


def _dims(shape: str, values):
    return [values[s] if s in values else int(s) for s in re.findall(r"[A-Za-z_]+|\d+", shape)]


# ------------------------------------------------------------------------------------ network
def test_network_scripts_and_matches_om_inputs():
    net = CenterNet(5, backbone_width=8, neck_channels=16, head_channels=16).eval()
    scripted = torch.jit.script(net)
    x = torch.randint(0, 256, (2, 3, 96, 64), dtype=torch.uint8)
    out, sout = net(x), scripted(x)
    predictions = [n for n, m in cn_base.INPUTS.items() if m["role"] == "prediction"]
    assert sorted(out) == sorted(predictions)
    values = {"N": 2, "num_classes": 5, "h": 96 // 4, "w": 64 // 4}
    for name in predictions:
        assert list(out[name].shape) == _dims(cn_base.INPUTS[name]["shape"], values), name
        torch.testing.assert_close(sout[name], out[name])
    # heat-map bias as published: sigmoid(-2.19) ~ 0.1 at start
    assert float(net.heatmap_head[-1].bias.detach().mean()) == pytest.approx(HEATMAP_BIAS)
    # the OM's infer entrypoint takes the outputs as they are
    det = cn_base.Infer(num_classes=5, top_k=7)(out["heatmap"], out["size"], out["offset"])
    assert det["boxes_pred"].shape == (2, 7, 4)


def test_class_specific_size_head():
    net = CenterNet(3, backbone_width=8, neck_channels=16, head_channels=16, class_specific_size=True).eval()
    out = torch.jit.script(net)(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    assert out["class_size"].shape == (1, 3, 2, 16, 16)
    torch.testing.assert_close(out["size"], out["class_size"].mean(1))


# ------------------------------------------------------------------------------------ data
def test_detection_boxes_match_instance_masks(synthetic):
    ds = CocoPanoptic.from_root(synthetic, "train")
    det = PanopticDetection(ds)
    assert det.num_classes == 3 and det.class_names == ("ellipse", "rectangle", "triangle")
    to_train = ds.category_to_train_id
    things = list(ds.thing_train_ids)
    checked = crowd_seen = 0
    for i in range(len(ds)):
        rec = ds.records[i]
        ids = read_panoptic_png(rec.label_path)  # raw PNG segment ids: an independent decoding
        expect = []
        for s in rec.segments:
            t = to_train[s.category_id]
            if t not in things:
                continue
            ys, xs = np.nonzero(ids == s.id)
            expect.append((s.iscrowd, things.index(t), xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, len(ys)))
            # the COCO segments_info bbox [x, y, w, h] agrees with the mask
            assert tuple(s.bbox) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        sample = det[i]
        got = [(bool(c), int(k), *map(float, b), float(a)) for b, k, c, a in
               zip(sample["boxes"], sample["classes"], sample["iscrowd"], sample["area"])]
        # synthetic images have at most one crowd segment, so crowd boxes are per segment here too
        assert sorted(got) == sorted((bool(e[0]), e[1], *map(float, e[2:6]), float(e[6])) for e in expect)
        checked += len(expect)
        crowd_seen += sum(e[0] for e in expect)
    assert checked > 20 and crowd_seen >= 1


def test_boxes_from_panoptic_handcrafted():
    pan = np.full((10, 12), 255 * 1000, np.int64)
    pan[2:5, 3:9] = 1 * 1000 + 1      # thing train id 1, instance 1
    pan[6:10, 0:2] = 3 * 1000 + 2     # thing train id 3, instance 2
    pan[0, 11] = 3 * 1000             # crowd pixel of class 3
    pan[7:9, 5:7] = 2 * 1000          # stuff
    boxes, classes, crowd, area = boxes_from_panoptic(pan, (1, 3), 1000)
    # one box per thing segment, ordered by panoptic id (1001, 3000 crowd, 3002); stuff and void have none
    assert boxes.tolist() == [[3, 2, 9, 5], [11, 0, 12, 1], [0, 6, 2, 10]]
    assert classes.tolist() == [0, 1, 1] and crowd.tolist() == [False, True, False]
    assert area.tolist() == [18, 1, 8]


def test_collate_pads_and_excludes_crowd():
    s1 = {"image": torch.zeros(3, 40, 50, dtype=torch.uint8), "boxes": torch.tensor([[0., 0, 5, 5], [1, 1, 9, 9]]),
          "classes": torch.tensor([2, 0]), "iscrowd": torch.tensor([False, True]), "area": torch.tensor([25., 64])}
    s2 = {"image": torch.zeros(3, 64, 64, dtype=torch.uint8), "boxes": torch.tensor([[0., 0, 5, 5], [2, 2, 4, 4],
                                                                                     [3, 3, 9, 9]]),
          "classes": torch.tensor([1, 1, 0]), "iscrowd": torch.zeros(3, dtype=torch.bool), "area": torch.ones(3)}
    b = collate_detection([s1, s2])
    assert b["image"].shape == (2, 3, 64, 64)
    assert b["boxes"].shape == (2, 3, 4) and b["classes"].tolist() == [[2, -1, -1], [1, 1, 0]]
    assert b["gt"][0]["iscrowd"].tolist() == [False, True]   # crowd kept for evaluation
    assert collate_detection([s1], max_objects=5)["classes"].shape == (1, 5)


def test_coco_instances_loader(tmp_path):
    import cv2

    (tmp_path / "val").mkdir()
    cv2.imwrite(str(tmp_path / "val" / "a.jpg"), np.zeros((30, 40, 3), np.uint8))
    (tmp_path / "annotations").mkdir()
    data = {"images": [{"id": 7, "file_name": "a.jpg", "height": 30, "width": 40}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 18, "bbox": [1, 2, 10, 5], "area": 40, "iscrowd": 0},
                            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [5, 5, 20, 20], "area": 300,
                             "iscrowd": 1},
                            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [5, 5, 0, 20], "area": 0, "iscrowd": 0}],
            "categories": [{"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]}
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(data))
    ds = CocoDetection.from_root(tmp_path, "val")
    s = ds[0]
    assert ds.num_classes == 2 and s["image"].shape == (3, 30, 40)
    assert s["boxes"].tolist() == [[1, 2, 11, 7], [5, 5, 25, 25]]
    assert s["classes"].tolist() == [1, 0] and s["iscrowd"].tolist() == [False, True]


# ------------------------------------------------------------------------------------ BoxAP
def _gt():
    boxes = torch.tensor([[[10., 10, 50, 60], [60, 20, 90, 40], [0, 0, 0, 0]],
                          [[5., 5, 30, 30], [40, 40, 100, 90], [0, 0, 0, 0]]])
    classes = torch.tensor([[0, 2, -1], [1, 1, -1]])
    return boxes, classes


def test_box_ap_perfect_and_false_positive():
    boxes, classes = _gt()
    ap = BoxAP(3)
    ap.update(boxes, torch.tensor([[0.9, 0.8, 0.0], [0.7, 0.6, 0.0]]), classes.clamp(min=0), boxes, classes)
    r = ap.compute()
    assert r["ap"] == pytest.approx(1.0) and r["ap50"] == pytest.approx(1.0) and r["ap75"] == pytest.approx(1.0)
    # a confident false positive on top (class 1 somewhere empty) lowers AP
    fp_boxes = torch.cat([torch.tensor([[[200., 200, 240, 240]], [[0., 0, 1, 1]]]), boxes], 1)
    fp_scores = torch.tensor([[0.95, 0.9, 0.8, 0.0], [0.0, 0.7, 0.6, 0.0]])
    fp_classes = torch.cat([torch.tensor([[0], [0]]), classes.clamp(min=0)], 1)
    ap2 = BoxAP(3)
    ap2.update(fp_boxes, fp_scores, fp_classes, boxes, classes)
    assert ap2.compute()["ap"] < 1.0
    # no ground truth: NaN; ground truth but no detection: 0
    assert np.isnan(BoxAP(3).compute()["ap"])
    ap3 = BoxAP(3)
    ap3.update(boxes, torch.zeros(2, 3), classes.clamp(min=0), boxes, classes)
    assert ap3.compute()["ap"] == 0.0


def test_box_ap_crowd_ignores_detections():
    boxes = torch.tensor([[[10., 10, 50, 60], [60, 60, 120, 120]]])
    classes = torch.tensor([[0, 0]])
    crowd = torch.tensor([[False, True]])
    det = torch.tensor([[[10., 10, 50, 60], [70, 70, 90, 90]]])  # the second lies inside the crowd region
    ap = BoxAP(1)
    ap.update(det, torch.tensor([[0.5, 0.9]]), torch.zeros(1, 2, dtype=torch.long), boxes, classes, crowd)
    assert ap.compute()["ap"] == pytest.approx(1.0)
    ap = BoxAP(1)
    ap.update(det, torch.tensor([[0.5, 0.9]]), torch.zeros(1, 2, dtype=torch.long), boxes, classes)
    assert ap.compute()["ap"] < 1.0


# ------------------------------------------------------------------------------------ runtime
def test_three_step_training_writes_checkpoint(synthetic, tmp_path):
    cfg = tiny_config(synthetic, tmp_path / "run")
    steps = []
    result = C.run_training(cfg, evaluate=True, on_step=lambda step, losses: steps.append(losses))
    assert result["step"] == 3 and len(steps) == 3
    for losses in steps:
        assert set(losses) == {"loss", "heat_loss", "size_loss", "offset_loss"}
        assert all(np.isfinite(v) for v in losses.values())
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["step"] == 3 and state["config"]["om"]["variant"] == "base"
    assert any(k.startswith("heatmap_head") for k in state["model"])
    ev = result["eval"]
    assert ev["images"] == 8 and 0.0 <= ev["ap"] <= 100.0


def test_cli_eval_and_radius_fix_variant(synthetic, tmp_path, capsys):
    cfg = tiny_config(synthetic, tmp_path / "fix", om={"variant": "radius-fix"}, train={"steps": 1})
    C.run_training(cfg, evaluate=False)
    path = tmp_path / "cfg.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    assert C.main(["eval", str(path), "--checkpoint", str(tmp_path / "fix" / "last.pt")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"ap", "ap50", "ap75", "images"} <= set(out) and out["images"] == 8
    assert C.main(["eval", str(path), "--set", "om.config.num_classes=5"]) == 1  # one-line error


def _distinct_center_cells(sample, stride=4):
    keep = ~sample["iscrowd"]
    b = sample["boxes"][keep].numpy()
    cells = np.floor(np.stack([(b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2], 1) / stride).astype(int)
    return len({tuple(c) for c in cells}) == len(cells)


def test_oracle_all_evaluation_ap_100(synthetic, tmp_path):
    """The oracle-all variant, fed the batch's ground truth through the same evaluation path, gives AP 100
    on scenes whose objects have distinct center cells (docs/centernet.md, collisions)."""
    cfg = tiny_config(synthetic, tmp_path / "oracle", om={"variant": "oracle-all"})
    val = C.build_dataset(cfg, "val", train=False)
    keep = [i for i in range(len(val)) if _distinct_center_cells(val[i])]
    assert len(keep) >= 4
    subset = torch.utils.data.Subset(val, keep)
    subset.num_classes = val.num_classes
    model = C.build_model(cfg, val.num_classes)
    r = C.make_evaluator(cfg, subset)(model, 0)
    assert r["images"] == len(keep)
    assert r["ap"] == pytest.approx(100.0) and r["ap50"] == pytest.approx(100.0) and r["ap75"] == pytest.approx(100.0)
    # the base variant with the same untrained network is far from it
    cfg["om"]["variant"] = "base"
    base = C.build_model(cfg, val.num_classes)
    base.network.load_state_dict(model.network.state_dict())
    assert C.make_evaluator(cfg, subset)(base, 0)["ap"] < 50.0


def test_om_loaded_by_name_has_no_centernet_code_in_runtime():
    om = load_om("specs/centernet.yaml", "base", compile=False)
    assert om.truth_inputs == ["boxes", "classes"]
    import runtime

    src = "".join(p.read_text() for p in __import__("pathlib").Path(runtime.__file__).parent.glob("*.py"))
    assert "centernet" not in src.lower()

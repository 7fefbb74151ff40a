"""The pose task: the COCO person-keypoints loader on a format-true fixture, flip with the joint pairs, the
synthetic stick figures, keypoint AP through COCOeval, oracle-all AP 100 through the CLI, 2-process gloo DDP."""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from train.data.keypoints import FLIP_PAIRS, CocoKeypoints, PoseAugment, collate_pose, flip_keypoints
from train.data.panoptic import DatasetError

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "pose"


def test_loader_reads_the_coco_format():
    ds = CocoKeypoints.from_root(FIXTURE, "val2017")
    data = json.loads((FIXTURE / "annotations" / "person_keypoints_val2017.json").read_text())
    assert len(ds) == 2 and ds.joint_names[0] == "nose" and ds.joint_names[16] == "right_ankle"
    s = ds[1]
    assert s["image"].shape == (3, 64, 96) and s["image"].dtype == torch.uint8
    anns = [a for a in data["annotations"] if a["image_id"] == 1001]
    x, y, w, h = anns[0]["bbox"]
    assert s["boxes"][0].tolist() == pytest.approx([x, y, x + w, y + h])
    assert s["keypoints"][0].reshape(-1).tolist() == pytest.approx(anns[0]["keypoints"])
    assert s["iscrowd"].tolist() == [a["iscrowd"] == 1 for a in anns]
    batch = collate_pose([ds[0], ds[1]])
    # crowd: kept for evaluation, not a training target (class -1); the person without joints stays a person
    assert batch["classes"].tolist() == [[0, 0], [0, 0]] and batch["image"].shape == (2, 3, 64, 96)
    assert batch["keypoints"].shape == (2, 2, 17, 3)
    assert (ds[0]["keypoints"][:, :, 2] > 0).sum(1).tolist() == [a["num_keypoints"] for a in data["annotations"]
                                                                 if a["image_id"] == 1000]


def test_skip_empty_and_bad_files_are_one_line(tmp_path):
    bad = tmp_path / "annotations"
    bad.mkdir()
    (bad / "person_keypoints_x.json").write_text('{"images": [], "annotations": [], "categories": [{"id": 1}]}')
    with pytest.raises(DatasetError, match="no category with the 17 COCO 'keypoints'"):
        CocoKeypoints.from_root(tmp_path, "x")
    (bad / "person_keypoints_x.json").write_text("{not json")
    with pytest.raises(DatasetError, match="malformed JSON"):
        CocoKeypoints.from_root(tmp_path, "x")
    with pytest.raises(DatasetError, match="not found"):
        CocoKeypoints.from_root(tmp_path, "missing")


def test_flip_swaps_the_joint_pairs_and_mirrors():
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, :, 0] = np.arange(17) + 10
    kps[0, :, 1] = 5
    kps[0, :, 2] = 2
    kps[0, 4] = 0  # right ear unlabelled
    flipped = flip_keypoints(kps, 100)
    assert flipped[0, 0, 0] == 90  # nose: x -> 100 - x
    for a, b in FLIP_PAIRS:
        if kps[0, b, 2] > 0:
            assert flipped[0, a, 0] == 100 - kps[0, b, 0]
    assert flipped[0, 3].tolist() == [0, 0, 0]  # the unlabelled right ear became the left ear, still (0, 0, 0)
    np.testing.assert_array_equal(flip_keypoints(flipped, 100), kps)


def test_augment_moves_joints_with_the_pixels():
    """A white pixel at each labelled joint stays under the joint through scale, crop and flip."""
    rng = np.random.default_rng(0)
    image = np.zeros((64, 80, 3), np.uint8)
    kps = np.zeros((1, 17, 3), np.float32)
    for j in range(17):
        x, y = int(rng.integers(8, 72)), int(rng.integers(8, 56))
        kps[0, j] = (x + 0.5, y + 0.5, 2)
        image[y, x] = 255
    aug = PoseAugment((48, 48), (1.0, 1.0), 1.0)
    out, boxes, out_kps, keep = aug(image, np.array([[4.0, 4.0, 76.0, 60.0]], np.float32), kps, np.random.default_rng(3))
    for j in range(17):
        if out_kps[0, j, 2] > 0:
            x, y = out_kps[0, j, :2]
            assert out[int(y), int(x)].max() == 255, j
    assert 0 < (out_kps[0, :, 2] > 0).sum() < 17  # some joints left the 48 x 48 crop, some stayed


def test_stick_figures_are_coco_keypoints(tmp_path):
    from pycocotools.coco import COCO

    from train.data.stick_figures import STRIDE, write_dataset

    write_dataset(tmp_path, 3, 12, (96, 96), seed=1)
    coco = COCO(str(tmp_path / "annotations" / "person_keypoints_val.json"))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(coco.getImgIds()) == 12 and len(anns) >= 12
    assert coco.loadCats(1)[0]["keypoints"][5] == "left_shoulder" and len(coco.loadCats(1)[0]["skeleton"]) == 19
    seen_v = set()
    for img in coco.getImgIds():
        cells = []
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[img])):
            k = np.array(a["keypoints"]).reshape(17, 3)
            seen_v |= set(k[:, 2].tolist())
            assert a["num_keypoints"] == int((k[:, 2] > 0).sum())
            x, y, w, h = a["bbox"]
            lab = k[k[:, 2] > 0]
            assert (lab[:, 0] >= x - 1e-6).all() and (lab[:, 0] <= x + w + 1e-6).all()
            cells += [(int(yy) // STRIDE, int(xx) // STRIDE) for xx, yy, _ in lab]
            assert ((k[k[:, 2] == 0]) == 0).all()  # unlabelled: (0, 0, 0) as COCO writes them
        assert len(cells) == len(set(cells))  # one labelled joint per output cell (the oracle is exact)
    assert seen_v == {0.0, 1.0, 2.0}  # border cuts / collisions, occluded, visible


def test_keypoint_ap_through_cocoeval():
    from train.tasks.pose import KeypointAP

    ds = CocoKeypoints.from_root(FIXTURE, "val2017")
    samples = [ds[0], ds[1]]
    gts = [{**{k: s[k].numpy() for k in ("boxes", "keypoints", "iscrowd", "area")}, "size": (64, 96)} for s in samples]

    def ap_of(shift):
        ap = KeypointAP()
        for g in gts:
            people = g["keypoints"][~g["iscrowd"]]
            k = torch.zeros(1, 5, 17, 2)
            k[0, :len(people)] = torch.from_numpy(people[:, :, :2]) + shift
            scores = torch.zeros(1, 5)
            scores[0, :len(people)] = torch.linspace(0.9, 0.5, len(people))
            ap.update(k, scores, [g])
        return ap.compute()

    assert ap_of(0.0)["ap"] == pytest.approx(1.0)
    assert ap_of(3.0)["ap"] < 0.9  # 3 px off on small people: OKS well below 1
    empty = KeypointAP()
    empty.update(torch.zeros(1, 5, 17, 2), torch.zeros(1, 5), [gts[0]])
    assert empty.compute()["ap"] == 0.0


def _synthetic_args(tmp_path):
    return ["--set", f"data.root={tmp_path}/data", "--set", "data.generate.train=4", "--set", "data.generate.val=12",
            "--set", "eval.visualize=1"]


def test_oracle_all_gives_keypoint_ap_100_through_the_cli(tmp_path, capsys):
    from train.cli import main

    args = ["eval", "train/configs/pose_synthetic.yaml", "--set", "om.variant=oracle-all", "--out", str(tmp_path / "e")]
    assert main(args + _synthetic_args(tmp_path)) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["ap"] == 100.0 and metrics["images"] == 12
    assert (tmp_path / "e" / "visuals" / "val_000_pose.png").exists()
    # a second eval into the same folder writes its own folder
    assert main(args + _synthetic_args(tmp_path)) == 0
    assert "e-2" in capsys.readouterr().err and (tmp_path / "e-2" / "eval.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


VARIANT_HEADS = [
    ("base", ["centers", "joint_heatmap_head", "joint_offset_head", "joint_sub_offset_head"]),
    ("no-joint-heatmap", ["centers", "joint_offset_head"]),  # no head without gradient: DDP needs none
]


def _worker(rank: int, ports: list, root: str, out: str) -> None:
    """Each variant in turn in one pair of processes (its own process group and port each)."""
    sys.path[:0] = [str(ROOT)]
    torch.set_num_threads(1)
    from runtime.config import load_config
    from train.tasks import task_of
    from train.tasks.base import run_training

    for (variant, _), port in zip(VARIANT_HEADS, ports):
        os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": "2",
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
        run = Path(out, variant)
        cfg = load_config(ROOT / "train/configs/pose_synthetic.yaml",
                          [f"data.root={root}", "data.generate.train=8", "data.generate.val=2",
                           "data.generate.size=64", "data.generate.seed=2", f"out_dir={run}",
                           f"om.variant={variant}", "train.steps=2", "train.batch_size=4", "train.workers=0",
                           "train.device=cpu", "train.time_budget_s=null", "threads=2"])
        result = run_training(task_of(cfg), cfg, evaluate=False)
        if result["rank"] == 0:
            heads = sorted({k.split(".")[0] for k in result["model"].network.state_dict()})
            (run / "result.json").write_text(json.dumps({"step": result["step"], "heads": heads}))


def test_two_process_gloo_ddp(tmp_path):
    from train.data.stick_figures import write_dataset

    write_dataset(tmp_path / "data", 8, 2, (64, 64), seed=2)
    (tmp_path / "data" / "generated.json").write_text(json.dumps({"train": 8, "val": 2, "size": [64, 64], "seed": 2}))
    out = tmp_path / "run"
    ports = [_free_port() for _ in VARIANT_HEADS]
    mp.spawn(_worker, args=(ports, str(tmp_path / "data"), str(out)), nprocs=2, join=True)
    for variant, heads in VARIANT_HEADS:
        assert json.loads((out / variant / "result.json").read_text()) == {"step": 2, "heads": heads}, variant

"""Cityscapes and COCO the official way: labels from cityscapesscripts, the raw download converted by its
createPanopticImgs, our PQ equal to the official evaluators (cityscapesscripts' evalPanopticSemanticLabeling,
panopticapi's pq_compute) on generated predictions, and raw fixture -> conversion -> training -> official
evaluation through the command line."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from train import cli
from train.data import CityscapesPanoptic, CocoPanoptic, DatasetError
from train.data.cityscapes_panoptic import BUILTIN_CITYSCAPES_CATEGORIES, official_cityscapes_categories
from train.data.cityscapes_raw import prepare_cityscapes
from train.data.official_eval import PanopticPredictionWriter, official_panoptic_quality

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import raw_cityscapes  # noqa: E402  (tests/train/raw_cityscapes.py)
finally:
    sys.path.remove(str(HERE))

cityscapesscripts = pytest.importorskip("cityscapesscripts", reason="the cityscapes extra is not installed "
                                        "(pip install 'omgen[cityscapes]'); CI installs it")
TOLERANCE = 1e-9  # PQ points (0-100): the two sums run in different orders


def test_builtin_table_equals_cityscapesscripts_labels():
    from cityscapesscripts.helpers.labels import labels

    assert official_cityscapes_categories() == BUILTIN_CITYSCAPES_CATEGORIES
    evaluated = [lab for lab in labels if not lab.ignoreInEval]
    assert [lab.trainId for lab in sorted(evaluated, key=lambda lab: lab.trainId)] == list(range(19))
    from train.data.cityscapes_panoptic import CITYSCAPES_LABELS_SOURCE

    assert CITYSCAPES_LABELS_SOURCE == "cityscapesscripts"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    written = raw_cityscapes.write_raw_cityscapes(root, {"train": 4, "val": 3}, sizes={"val": (60, 100)})
    reports = prepare_cityscapes(root)
    return root, written, reports


def test_conversion_is_the_official_one_and_loads_as_the_format_says(converted):
    root, written, reports = converted
    assert [(r.split, r.images, r.converted) for r in reports] == [("train", 4, True), ("val", 3, True)]
    for split in ("train", "val"):
        ds = CityscapesPanoptic(root, split)
        assert len(ds) == len(written[split])
        by_frame = {raw.name.replace("_gtFine_instanceIds.png", ""): raw for raw in written[split]}
        assert sorted(rec.image_id for rec in ds.records) == sorted(by_frame)
        for i, rec in enumerate(ds.records):
            raw = by_frame[rec.image_id]
            import cv2

            ids = cv2.imread(str(raw), cv2.IMREAD_UNCHANGED)
            _, pan = ds.load(i)
            np.testing.assert_array_equal(pan, raw_cityscapes.expected_panoptic(ids))
    # nothing but the official outputs was written next to the raw folders
    assert sorted(p.name for p in (root / "gtFine").iterdir()) == [
        "cityscapes_panoptic_train", "cityscapes_panoptic_train.json", "cityscapes_panoptic_val",
        "cityscapes_panoptic_val.json", "train", "val"]
    again = prepare_cityscapes(root)
    assert [r.converted for r in again] == [False, False]


def _perturbed(truth: np.ndarray, rng: np.random.Generator, k: int, divisor: int = 1000) -> np.ndarray:
    """A plausible prediction: shifted segments, swapped classes, merged and invented segments, void."""
    pred = truth.copy()
    h, w = pred.shape
    pred = np.roll(pred, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 2)))
    classes = pred // divisor
    for cls in np.unique(classes):
        if cls != 255 and rng.random() < 0.2:
            pred[classes == cls] = int(rng.integers(0, k)) * divisor + (pred[classes == cls] % divisor)
    for _ in range(int(rng.integers(1, 4))):
        y, x = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
        pred[y:y + int(rng.integers(2, h // 2)), x:x + int(rng.integers(2, w // 2))] = (
            int(rng.integers(0, k)) * divisor + int(rng.integers(0, 4)))
    pred[rng.random(pred.shape) < 0.02] = 255 * divisor
    return pred


def _ours_vs_official(ds, kind: str, out_dir: Path, seed: int):
    from runtime.evaluation import PanopticQuality

    rng = np.random.default_rng(seed)
    pq = PanopticQuality(ds.num_classes, list(ds.thing_train_ids), ds.label_divisor, ds.ignore_label)
    writer = PanopticPredictionWriter(out_dir, ds)
    for i in range(len(ds)):
        _, truth = ds.load(i)
        pred = _perturbed(truth, rng, ds.num_classes)
        pq.update(torch.from_numpy(pred)[None, None], torch.from_numpy(truth)[None, None])
        writer.add(i, pred)
    ours = pq.compute()
    ref = official_panoptic_quality(kind, writer, out_dir)
    return ours, ref


def _assert_equal(ours, ref):
    for metric in ("pq", "sq", "rq", "pq_things", "pq_stuff"):
        assert abs(100 * ours[metric] - ref[metric]) <= TOLERANCE, metric
    for metric in ("pq", "sq", "rq"):
        np.testing.assert_allclose(100 * ours[f"per_class_{metric}"].numpy(), ref[f"per_class_{metric}"],
                                   atol=TOLERANCE, rtol=0)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_our_pq_equals_the_official_cityscapes_evaluator_per_class(converted, tmp_path_factory, seed):
    root, _, _ = converted
    ours, ref = _ours_vs_official(CityscapesPanoptic(root, "val"), "cityscapes", tmp_path_factory.mktemp("ev"), seed)
    assert ref["evaluator"] == "cityscapesscripts"
    _assert_equal(ours, ref)


def test_the_generated_predictions_are_not_trivial(converted, tmp_path):
    root, _, _ = converted
    _, ref = _ours_vs_official(CityscapesPanoptic(root, "val"), "cityscapes", tmp_path, 0)
    assert 0 < ref["pq"] < 100  # the perturbations matched some segments and missed others


def test_our_pq_equals_panopticapi_on_coco_files(tmp_path):
    pytest.importorskip("panopticapi", reason="panopticapi-lite is a test dependency (scripts/test.sh)")
    from train.data.synthetic import write_dataset

    root = tmp_path / "synthetic"
    write_dataset(root, 2, 4, (64, 96), 3)
    ours, ref = _ours_vs_official(CocoPanoptic.from_root(root, "val"), "synthetic", tmp_path / "eval", 5)
    assert ref["evaluator"] == "panopticapi"
    _assert_equal(ours, ref)


def _run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_raw_fixture_to_official_evaluation_through_the_command_line(tmp_path, capsys):
    root = tmp_path / "cityscapes"
    raw_cityscapes.write_raw_cityscapes(root, {"train": 2, "val": 2}, sizes={"val": (60, 100)}, seed=3)
    code, out, err = _run(["data", "cityscapes", str(root)], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["splits"]["val"]["images"] == 2 and summary["splits"]["train"]["converted"] is True
    assert "Cityscapes labels from cityscapesscripts" in err

    config = cli.CONFIG_DIR / "cityscapes_r50.yaml"
    sets = [f"data.root={root}", "train.steps=2", "train.batch_size=2", "train.workers=0", "train.progress=false",
            "train.tensorboard=false", "model.arch=small", "model.backbone_width=16", "data.crop_size=[64,128]",
            "train.amp=none"]
    flags = [a for s in sets for a in ("--set", s)]
    code, out, err = _run(["train", str(config), "--out", str(tmp_path / "run"), "--no-eval", *flags], capsys)
    assert code == 0, err
    code, out, err = _run(["eval", str(config), "--checkpoint", str(tmp_path / "run" / "last.pt"), "--official",
                           "--out", str(tmp_path / "eval"), *flags], capsys)
    assert code == 0, err
    record = json.loads(out)
    official = record["official"]
    assert official["evaluator"] == "cityscapesscripts"
    assert official["max_abs_diff_pq"] <= TOLERANCE
    assert abs(official["pq"] - record["pq"]) <= 1e-3  # both rounded to 3-4 digits in the record
    assert "official (cityscapesscripts)" in err
    # the oracle variant (truth in, no checkpoint) scores far from 0 and from 100: the two evaluators agree on a
    # non-trivial case too, per class
    code, out, err = _run(["eval", str(config), "--official", "--out", str(tmp_path / "oracle"),
                           "--set", "om.variant=oracle-all", *flags], capsys)
    assert code == 0, err
    oracle = json.loads(out)
    assert 10 < oracle["pq"] < 100 and oracle["official"]["max_abs_diff_pq"] <= TOLERANCE
    assert oracle["official"]["per_class_pq"] == oracle["per_class_pq"]
    pred = json.loads((tmp_path / "eval" / "predictions" / "panoptic.json").read_text())
    assert len(pred["annotations"]) == 2
    from PIL import Image

    for ann in pred["annotations"]:  # cropped to the image, not the padded batch
        with Image.open(tmp_path / "eval" / "predictions" / "panoptic" / ann["file_name"]) as im:
            assert im.size == (100, 60)


# ------------------------------------------------------------------------------ layout errors, one line each
def _data_error(argv, capsys) -> str:
    code, out, err = _run(argv, capsys)
    assert code == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_missing_image_names_the_first_missing_file(tmp_path, capsys):
    written = raw_cityscapes.write_raw_cityscapes(tmp_path, {"val": 2})
    missing = tmp_path / "leftImg8bit" / "val" / "aachen" / written["val"][0].name.replace(
        "_gtFine_instanceIds.png", "_leftImg8bit.png")
    missing.unlink()
    line = _data_error(["data", "cityscapes", str(tmp_path), "--split", "val"], capsys)
    assert str(missing) in line and "leftImg8bit_trainvaltest.zip" in line
    assert not (tmp_path / "gtFine" / "cityscapes_panoptic_val.json").exists()


def test_missing_gtfine_and_missing_split(tmp_path, capsys):
    line = _data_error(["data", "cityscapes", str(tmp_path)], capsys)
    assert str(tmp_path / "gtFine") in line and "gtFine_trainvaltest.zip" in line
    raw_cityscapes.write_raw_cityscapes(tmp_path, {"val": 1})
    line = _data_error(["data", "cityscapes", str(tmp_path), "--split", "train"], capsys)
    assert str(tmp_path / "gtFine" / "train") in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_or_a_non_png_is_refused_without_reading(tmp_path, capsys):
    written = raw_cityscapes.write_raw_cityscapes(tmp_path, {"val": 2})
    first = written["val"][0]
    first.unlink()
    os.mkfifo(first)  # opening it would block forever
    line = _data_error(["data", "cityscapes", str(tmp_path), "--split", "val"], capsys)
    assert str(first) in line and "not a regular file" in line
    first.unlink()
    first.write_bytes(b"GIF89a not a png")
    line = _data_error(["data", "cityscapes", str(tmp_path), "--split", "val"], capsys)
    assert str(first) in line


def test_an_interrupted_conversion_leaves_nothing_that_looks_converted(tmp_path, monkeypatch):
    import cityscapesscripts.preparation.createPanopticImgs as official

    raw_cityscapes.write_raw_cityscapes(tmp_path, {"val": 2})
    real = official.convert2panoptic

    def interrupted(cityscapesPath, outputFolder, useTrainId, setNames):
        real(cityscapesPath, outputFolder, useTrainId, setNames)
        raise KeyboardInterrupt  # after writing: the move into place must not happen

    monkeypatch.setattr(official, "convert2panoptic", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_cityscapes(tmp_path, ["val"])
    assert sorted(p.name for p in (tmp_path / "gtFine").iterdir()) == ["val"]
    monkeypatch.setattr(official, "convert2panoptic", real)
    assert prepare_cityscapes(tmp_path, ["val"])[0].images == 2


def test_coco_data_command_counts_a_split(tmp_path, capsys):
    from train.data.synthetic import write_dataset

    write_dataset(tmp_path, 2, 3, (32, 32), 0)
    code, out, err = _run(["data", "coco", str(tmp_path), "--split", "val", "--validate"], capsys)
    assert code == 0, err
    assert json.loads(out)["splits"]["val"]["images"] == 3
    line = _data_error(["data", "coco", str(tmp_path), "--split", "val2017"], capsys)
    assert str(tmp_path / "annotations" / "panoptic_val2017.json") in line


def test_official_on_a_task_without_an_evaluator_is_a_usage_error(tmp_path, capsys):
    code, _, err = _run(["eval", str(cli.CONFIG_DIR / "centernet_synthetic.yaml"), "--official"], capsys)
    assert code == 2 and "no official evaluator" in err


def test_dataset_error_type_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


# ------------------------------------------------------------------------------ category-mapping errors
def _rewrite(json_path: Path, edit) -> None:
    data = json.loads(json_path.read_text())
    edit(data)
    json_path.write_text(json.dumps(data))


def _coco(tmp_path) -> Path:
    from train.data.synthetic import write_dataset

    write_dataset(tmp_path, 1, 2, (32, 32), 0)
    return tmp_path / "annotations" / "panoptic_val.json"


def test_non_contiguous_category_ids_map_to_contiguous_train_ids_and_back(tmp_path):
    path = _coco(tmp_path)
    data = json.loads(path.read_text())
    new_id = {c["id"]: 7 + 13 * k for k, c in enumerate(data["categories"])}  # 7, 20, 33, ...: gaps everywhere

    def renumber(d):
        for c in d["categories"]:
            c["id"] = new_id[c["id"]]
        for a in d["annotations"]:
            for s in a["segments_info"]:
                s["category_id"] = new_id[s["category_id"]]

    _rewrite(path, renumber)
    ds = CocoPanoptic.from_root(tmp_path, "val")
    assert ds.categories.category_ids == tuple(sorted(new_id.values()))
    assert ds.num_classes == len(new_id)
    _, pan = ds.load(0)
    classes = set(np.unique(pan // ds.label_divisor).tolist()) - {ds.ignore_label}
    assert classes and classes <= set(range(ds.num_classes))
    writer = PanopticPredictionWriter(tmp_path / "eval", ds)
    writer.add(0, pan)
    written = {s["category_id"] for s in writer.annotations[0]["segments_info"]}
    assert written <= set(new_id.values()) and written  # dataset ids on disk, not train ids


def _used(d) -> int:
    """Index in 'categories' of the category of the first segment."""
    cid = d["annotations"][0]["segments_info"][0]["category_id"]
    return next(k for k, c in enumerate(d["categories"]) if c["id"] == cid)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["categories"][1].pop("isthing"), "has no 'isthing'"),
    (lambda d: d["categories"][1].update(isthing="yes"), "'isthing' is 'yes', expected 0 or 1"),
    (lambda d: d["categories"][1].update(id=-3), "id must be a non-negative integer"),
    (lambda d: d["categories"].pop(_used(d)), "is not in 'categories'"),
])
def test_category_mistakes_are_one_line_errors_naming_file_and_category(tmp_path, edit, expected):
    path = _coco(tmp_path)
    data = json.loads(path.read_text())
    named = data["categories"][1]
    _rewrite(path, edit)
    with pytest.raises(DatasetError) as info:
        CocoPanoptic.from_root(tmp_path, "val")
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message
    if expected == "is not in 'categories'":  # the segment's category id, and where the listed ids are
        assert f"category_id {data['annotations'][0]['segments_info'][0]['category_id']}" in message
    else:  # the category's name, not only its index
        assert repr(named["name"]) in message


@pytest.mark.parametrize("edit, expected", [
    (lambda d: [c.update(id=c["id"] and 0) for c in d["categories"]], "appears twice"),
    (lambda d: d["categories"].pop(), "category 33 ('bicycle') is missing"),
    (lambda d: [c.update(isthing=0) for c in d["categories"] if c["id"] == 26], "category id 26 ('car') has "
     "isthing=0"),
])
def test_cityscapes_category_mistakes(converted, tmp_path, edit, expected):
    import shutil

    root, _, _ = converted
    copy = tmp_path / "cs"
    shutil.copytree(root / "gtFine", copy / "gtFine", ignore=shutil.ignore_patterns("train*"))
    path = copy / "gtFine" / "cityscapes_panoptic_val.json"
    _rewrite(path, edit)
    with pytest.raises(DatasetError) as info:
        CityscapesPanoptic(copy, "val")
    assert str(info.value).startswith(str(path)) and expected in str(info.value)


def test_a_train_id_conversion_is_recognised(converted, tmp_path):
    import shutil

    from cityscapesscripts.helpers.labels import id2label

    root, _, _ = converted
    copy = tmp_path / "cs"
    shutil.copytree(root / "gtFine", copy / "gtFine", ignore=shutil.ignore_patterns("train*"))
    path = copy / "gtFine" / "cityscapes_panoptic_val.json"

    def to_train_ids(d):  # what createPanopticImgs --use-train-id writes
        for c in d["categories"]:
            c["id"] = id2label[c["id"]].trainId

    _rewrite(path, to_train_ids)
    with pytest.raises(DatasetError, match="--use-train-id"):
        CityscapesPanoptic(copy, "val")


# ------------------------------------------------------------------------------ docs/datasets.md as written
def _doc_commands() -> list[str]:
    import re

    text = (HERE.parents[1] / "docs" / "datasets.md").read_text()
    section = text[text.index("## From the raw downloads to a training run"):text.index("### Official evaluation")]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_documented_dataset_commands_run_as_written(tmp_path, capsys, monkeypatch):
    import shlex

    commands = _doc_commands()
    assert any(c.startswith("python -m train data cityscapes") for c in commands)
    raw_cityscapes.write_raw_cityscapes(tmp_path / "data" / "cityscapes", {"train": 1, "val": 1})
    from train.data.synthetic import write_dataset

    write_dataset(tmp_path / "data" / "coco", 1, 1, (32, 32), 0)
    for split in ("train2017", "val2017"):  # the synthetic writer's split names are train/val
        for suffix in ("", ".json"):
            (tmp_path / "data" / "coco" / "annotations" / f"panoptic_{split}{suffix}").symlink_to(
                tmp_path / "data" / "coco" / "annotations" / f"panoptic_{split[:-4]}{suffix}")
    monkeypatch.chdir(tmp_path)
    parser = cli._parser()
    for command in commands:
        argv = shlex.split(command)
        if argv[:2] == ["pip", "install"]:
            continue  # the environment already has the extra (CI installs it)
        assert argv[:3] == ["python", "-m", "train"], command
        if argv[3] == "data":  # runs here: only the fixtures are needed
            code, out, err = _run(argv[3:], capsys)
            assert code == 0, (command, err)
        else:  # train / eval need the full dataset and hours: the real parser must accept them as written
            args = parser.parse_args(argv[3:])
            assert (cli.PROJECT_ROOT / args.config).is_file(), command

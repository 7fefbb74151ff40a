"""Oracle studies from the command line: an oracle variant evaluated on a dataset preset, without a checkpoint.

`om.config_from: synthetic` applies the synthetic preset's config to `oracle-all`; OMModel.predict hands the
oracle's infer entrypoint the truth inputs of the batch.
"""
import json

import pytest

from runtime.om import load_om, preset_overrides
from train.cli import main


def _eval(tmp_path, *sets):
    args = ["eval", "train/configs/synthetic_demo.yaml", "--out", str(tmp_path / "run"),
            "--set", f"data.root={tmp_path}/data", "--set", "data.generate.train=2", "--set", "data.generate.val=6",
            "--set", "eval.visualize=0"]
    for item in sets:
        args += ["--set", item]
    return main(args)


def test_preset_overrides_are_the_preset_config_that_differs():
    oracle = load_om("specs/panoptic.yaml", "oracle-all", compile=False)
    synthetic = load_om("specs/panoptic.yaml", "synthetic", compile=False)
    assert preset_overrides(oracle, synthetic) == {"num_classes": 6, "thing_ids": [1, 3, 5], "stuff_area": 64,
                                                   "small_instance_area": 256}
    assert preset_overrides(synthetic, synthetic) == {}
    # only what the preset sets: coco's own ignore_crowd_in_semantic (true) is not reset to the default
    coco = load_om("specs/panoptic.yaml", "coco", compile=False)
    assert coco.module.VARIANT_CONFIG["ignore_crowd_in_semantic"] is True
    assert preset_overrides(coco, synthetic) == {"num_classes": 6, "thing_ids": [1, 3, 5], "stuff_area": 64,
                                                 "small_instance_area": 256}
    with pytest.raises(ValueError, match="of OM centernet"):
        preset_overrides(oracle, load_om("specs/centernet.yaml", "base", compile=False))


def test_oracle_all_on_the_synthetic_preset_needs_no_checkpoint_and_gets_pq_100(tmp_path, capsys):
    assert _eval(tmp_path, "om.variant=oracle-all", "om.config_from=synthetic") == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["images"] == 6
    assert metrics["pq"] == pytest.approx(100.0) and metrics["rq"] == pytest.approx(100.0)


def test_oracle_semantics_alone_is_bounded_by_the_untrained_centers(tmp_path, capsys):
    """Only the semantics are oracle: stuff is perfect, things depend on the (untrained) centers."""
    assert _eval(tmp_path, "om.variant=oracle-semantics", "om.config_from=synthetic") == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["pq_stuff"] == pytest.approx(100.0) and metrics["pq_things"] < 100.0


def test_a_trained_variant_without_checkpoint_warns(tmp_path, capsys):
    with pytest.warns(UserWarning, match="untrained network"):
        assert _eval(tmp_path, "om.variant=synthetic") == 0


def test_unknown_preset_is_one_line(tmp_path, capsys):
    assert _eval(tmp_path, "om.variant=oracle-all", "om.config_from=nope") == 1
    err = capsys.readouterr().err.strip()  # after the line of the dataset generation
    assert "Traceback" not in err and sum("error" in line for line in err.splitlines()) == 1
    last = err.splitlines()[-1]
    assert last.startswith("specs/panoptic.yaml:1:1: error: unknown variant 'nope'") and "synthetic" in last


def test_a_checkpoint_of_another_network_is_one_line(tmp_path, capsys):
    args = ["--set", f"data.root={tmp_path}/data", "--set", "data.generate.train=2", "--set", "data.generate.val=2",
            "--set", "eval.enabled=false", "--set", "train.steps=1", "--set", "train.batch_size=2"]
    assert main(["train", "train/configs/synthetic_demo.yaml", "--out", str(tmp_path / "run"), *args]) == 0
    checkpoint = str(tmp_path / "run" / "last.pt")
    capsys.readouterr()
    code = main(["eval", "train/configs/synthetic_demo.yaml", "--checkpoint", checkpoint, *args,
                 "--set", "model.backbone_width=8"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and err.startswith(f"error: {checkpoint}: the checkpoint does not fit") and "other shape" in err

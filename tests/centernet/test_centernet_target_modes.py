"""CenterNet's targets computed inline, on the device or in the data loader: the same losses, step by step.

Its targets entrypoint takes the output grid as a size input (`grid: {type: Size, shape: [h, w]}`): the generic
runtime reads it off the network's heat map on the device, and train/centernet.py's collate puts it into the
batch in the loader; no stand-in tensor travels anywhere.
"""
import numpy as np
import pytest
import torch

from runtime.model import TargetsCollate
from runtime.om import load_om
from train import centernet as C
from train.data.synthetic import write_dataset

from test_centernet_training import tiny_config  # tests/centernet is on sys.path (rootdir import mode)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("cn_modes")
    write_dataset(root, 8, 2, (64, 64), seed=5, crowd_prob=0.3)
    return root


def _losses(root, out, mode: str, workers: int = 0):
    cfg = tiny_config(root, out, om={"targets": mode}, train={"steps": 2, "workers": workers})
    steps = []
    C.run_training(cfg, evaluate=False, on_step=lambda step, losses: steps.append(dict(losses)))
    return steps


def test_device_and_loader_targets_give_the_inline_losses(synthetic, tmp_path):
    torch.set_num_threads(1)
    inline = _losses(synthetic, tmp_path / "inline", "inline")
    device = _losses(synthetic, tmp_path / "device", "device")
    loader = _losses(synthetic, tmp_path / "loader", "loader", workers=1)  # a worker process: pickling too
    assert len(inline) == len(device) == len(loader) == 2
    for a, b, c in zip(inline, device, loader):
        for key in ("loss", "heat_loss", "size_loss", "offset_loss"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=f"device {key}")
            np.testing.assert_allclose(c[key], a[key], rtol=1e-5, err_msg=f"loader {key}")


def test_loader_collate_adds_the_grid_and_the_targets_read_it(synthetic):
    cfg = tiny_config(synthetic, "unused", om={"targets": "loader"})
    ds = C.build_dataset(cfg, "train", train=True)
    collate = C.make_collate(cfg, train=True)
    samples = [ds[i] for i in range(3)]
    plain = collate(samples)
    assert plain["grid"] == [16, 16]  # 64 x 64 images, output stride 4
    om = load_om("specs/centernet.yaml", "base", compile=False)
    assert om.signature("targets") == ["grid", "boxes", "classes"]  # no heat map
    batch = TargetsCollate(collate, om, {"num_classes": ds.num_classes})(samples)
    assert batch["targets"]["heat_truth"].shape == (3, ds.num_classes, 16, 16)
    want = om.build("targets", {"num_classes": ds.num_classes})([16, 16], plain["boxes"], plain["classes"])
    for name, value in want.items():
        assert torch.equal(batch["targets"][name], value), name


def test_loader_without_the_grid_names_what_is_missing(synthetic):
    cfg = tiny_config(synthetic, "unused")
    ds = C.build_dataset(cfg, "train", train=True)
    om = load_om("specs/centernet.yaml", "base", compile=False)
    collate = TargetsCollate(C.make_collate(cfg), om, {"num_classes": ds.num_classes})
    with pytest.raises(KeyError, match=r"lacks \['grid'\].*size inputs.*batch\['grid'\] = \[H // stride, W // stride\]"):
        collate([ds[0]])


def test_the_grid_is_read_off_the_heat_map_and_checked_against_it():
    om = load_om("specs/centernet.yaml", "base", compile=False)
    heat = torch.zeros(2, 80, 12, 20)
    assert om.sizes_from({"heatmap": heat, "boxes": torch.zeros(2, 3, 4)}) == {"grid": [12, 20]}
    train = om.build("train")
    inputs = dict(heatmap=heat, size=torch.zeros(2, 2, 12, 20), offset=torch.zeros(2, 2, 12, 20),
                  boxes=torch.zeros(2, 3, 4), classes=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input 'grid': expected sizes \[h, w\], got \[12, 21\] \(w = 20 in an earlier"):
        train(**inputs, grid=[12, 21])
    assert torch.isfinite(train(**inputs, grid=[12, 20])["loss"])


def test_only_the_prediction_inputs_the_variant_takes_are_required():
    """class_size exists for class-specific-size only: other variants train without it."""
    from runtime.model import OMModel

    class Net(torch.nn.Module):
        def forward(self, x):
            n = x.shape[0]
            return {"heatmap": torch.randn(n, 3, 8, 8), "size": torch.rand(n, 2, 8, 8),
                    "offset": torch.rand(n, 2, 8, 8)}

    out = Net()(torch.zeros(2, 3, 32, 32))
    base = OMModel(Net(), load_om("specs/centernet.yaml", "base", compile=False), config={"num_classes": 3})
    assert sorted(base.predictions(out)) == ["heatmap", "offset", "size"]
    specific = OMModel(Net(), load_om("specs/centernet.yaml", "class-specific-size", compile=False),
                       config={"num_classes": 3})
    with pytest.raises(KeyError, match="'class_size' needs network output 'class_size'"):
        specific.predictions(out)

"""Helpers of the deployment tests: a checkpoint in the training format, test images, PPM files."""
import copy
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime import checkpoint as ckpt
from runtime.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "train" / "configs" / "synthetic_demo.yaml"


def tiny_config(root: Path) -> dict:
    """The demo config (synthetic variant, ResNet-18 width 16) with its data root moved to ``root``."""
    cfg = load_config(DEMO_CONFIG)
    cfg["data"]["root"] = str(root / "data")
    cfg["out_dir"] = str(root / "run")
    return cfg


def write_checkpoint(path: Path, cfg: dict, *, extra: dict | None = None, seed: int = 0) -> Path:
    """An untrained network in the checkpoint format of ``python -m train train``, with heads scaled up
    so that decoding sees every class, stuff and things, and several centers (not a near-constant map)."""
    from train.cli import build_network

    torch.manual_seed(seed)
    net = build_network(cfg, 6)
    heads = net.net
    with torch.no_grad():
        nn.init.normal_(heads.semantic_head.predictor.weight, std=0.5)
        nn.init.normal_(heads.center_head.predictor.weight, std=0.3)
        heads.center_head.predictor.bias.fill_(0.2)
        nn.init.normal_(heads.offset_head.predictor.weight, std=2.0)
    net.eval()
    state = ckpt.make_state(7, net, config=copy.deepcopy(cfg), extra=extra or {})
    return ckpt.save_atomic(state, path)


def synthetic_image(index: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A synthetic scene (uint8 [3, H, W]), cropped to ``size`` when given."""
    from train.data.synthetic import render_indexed

    img = render_indexed(0, "val", index).image
    if size is not None:
        img = img[: size[0], : size[1]]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()


def write_ppm(path: Path, image_chw: torch.Tensor) -> Path:
    hwc = image_chw.permute(1, 2, 0).contiguous().numpy()
    h, w, _ = hwc.shape
    path.write_bytes(b"P6\n%d %d\n255\n" % (w, h) + hwc.tobytes())
    return path


def read_id_ppm(path: Path) -> np.ndarray:
    """A P6 written by examples/cpp: id = R + 256 G + 65536 B."""
    data = path.read_bytes()
    header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)
    assert header is not None, f"{path}: not a P6 PPM with maxval 255"
    w, h = int(header.group(1)), int(header.group(2))
    rgb = np.frombuffer(data[header.end():], dtype=np.uint8).reshape(h, w, 3).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


TASK_CONFIGS = {"detection": ROOT / "train" / "configs" / "centernet_synthetic.yaml",
                "pose": ROOT / "train" / "configs" / "pose_synthetic.yaml"}


def write_task_checkpoint(task_name: str, path: Path, *, variant: str = "base", seed: int = 0) -> Path:
    """An untrained CenterNet (detection) or pose network in the training checkpoint format, heat-map heads
    biased up so that decoding finds objects (the synthetic scenes' 3 thing classes for detection)."""
    from runtime.om import om_from_config
    from train.tasks import get_task

    cfg = load_config(TASK_CONFIGS[task_name])
    cfg["om"]["variant"] = variant
    cfg["data"]["root"] = str(path.parent / "data")
    cfg["out_dir"] = str(path.parent / "run")
    if task_name == "detection":
        cfg["om"]["config"] = {"num_classes": 3}
    task = get_task(task_name)
    om, om_config = om_from_config({**cfg["om"], "compile": "off"}, task.spec)
    torch.manual_seed(seed)
    import types

    net = task.network(cfg, om, om_config, types.SimpleNamespace(num_classes=3, thing_train_ids=[]))
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, nn.Conv2d) and module.bias is not None and "heatmap" in name:
                module.bias.add_(2.0)
    net.eval()
    state = ckpt.make_state(3, net, config=copy.deepcopy(cfg), extra={"om": {"config": dict(om_config)}})
    return ckpt.save_atomic(state, path)

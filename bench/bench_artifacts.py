"""Every artifact kind of one deployed program, timed in one run against the eager program, on the CPU.

    python bench/bench_artifacts.py [--threads 2] [--repeat 5] [--tasks panoptic,detection] [--skip-aoti]

Writes untrained checkpoints in the training format (panoptic: the
Cityscapes-sized "base" variant, 19 classes, ResNet-18-style "small" network
at width 64, heads scaled so that decoding finds ~9 classes and ~70 centers,
as bench/bench_deploy.py; CenterNet: "base", 80 classes, ResNet-18 at width
64, heat-map bias raised), exports each once with ``--format ts,pt2,aoti``
(one dynamic-shape program serves every size) and times on uint8 images:

* panoptic at 512 x 1024 and 1024 x 2048, CenterNet at 512 x 512, batch 1;
* eager ``DeployedProgram`` (Python), TorchScript (``torch.jit.load``),
  ExportedProgram (``torch.export.load(...).module()``), AOTInductor
  (``aoti_load_package``) of the dynamic program, and AOTInductor compiled for
  that one size (``--aoti-size H W``).

Each time is the minimum over --repeat rounds after two warm-up calls; each
round runs every row once in a rotating order so the shared machine's drift
hits all rows alike. Also prints how far each artifact is from eager (integer
outputs: share of values that differ; floats: largest difference). Prints the
markdown table of the "Deployment artifacts" section of docs/benchmarks.md.
"""
import argparse
import copy
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_deploy import make_checkpoint  # noqa: E402
from runtime import checkpoint as ckpt  # noqa: E402
from runtime.config import load_config  # noqa: E402
from runtime.deployed import load  # noqa: E402
from train.deploy import build_deployment, export_artifacts, load_checkpoint_model  # noqa: E402

SIZES = {"panoptic": [(512, 1024), (1024, 2048)], "detection": [(512, 512)]}


def centernet_checkpoint(path: Path, width: int = 64, seed: int = 0) -> Path:
    from runtime.om import om_from_config
    from train.tasks import get_task

    cfg = load_config(ROOT / "train" / "configs" / "centernet_synthetic.yaml")
    cfg["om"]["config"] = {"num_classes": 80}
    cfg["model"] = {"backbone": "resnet18", "backbone_width": width, "neck_channels": 64, "head_channels": 64}
    cfg["data"]["root"] = str(path.parent / "data")
    task = get_task("detection")
    om, om_config = om_from_config({**cfg["om"], "compile": "off"}, task.spec)
    torch.manual_seed(seed)
    net = task.network(cfg, om, om_config, types.SimpleNamespace(num_classes=80))
    with torch.no_grad():
        net.heatmap_head[-1].bias.fill_(-1.0)  # a busy scene: many peaks above the usual -2.19
        nn.init.normal_(net.heatmap_head[-1].weight, std=0.3)
    state = ckpt.make_state(0, net.eval(), config=copy.deepcopy(cfg), extra={"om": {"config": dict(om_config)}})
    return ckpt.save_atomic(state, path)


def scene(size, seed: int = 0) -> torch.Tensor:
    """A uint8 image with structure (smooth blobs and edges), not noise."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    low = torch.rand(1, 3, max(1, h // 32), max(1, w // 32), generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (img * 255).to(torch.uint8)


def round_robin(fns, repeat: int):
    for fn in fns.values():
        for _ in range(2):
            fn()
    best = {name: float("inf") for name in fns}
    names = list(fns)
    for r in range(repeat):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t = time.perf_counter()
            fns[name]()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def difference(got: dict, want: dict) -> str:
    parts = []
    for name, value in want.items():
        if value.dtype.is_floating_point:
            parts.append(f"{name} {float((got[name] - value).abs().max()):.1e}")
        elif not torch.equal(got[name], value):
            parts.append(f"{name} {100 * float((got[name] != value).float().mean()):.3f} %")
    return ", ".join(parts) or "equal"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--tasks", default="panoptic,detection")
    p.add_argument("--skip-aoti", action="store_true", help="no AOTInductor compile (minutes on a CPU)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    formats = ("ts", "pt2") if args.skip_aoti else ("ts", "pt2", "aoti")
    print(f"# {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"min of {args.repeat}")
    print("| task | image | artifact | ms | vs eager | outputs vs eager |")
    print("| --- | --- | --- | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for task in args.tasks.split(","):
            folder = tmp / task
            folder.mkdir()
            path = (make_checkpoint(folder / "last.pt", "small", 64) if task == "panoptic"
                    else centernet_checkpoint(folder / "last.pt"))
            t = time.perf_counter()
            written = export_artifacts(path, folder / "model", formats,
                                       log=lambda line: print("# " + line, file=sys.stderr))
            print(f"# {task}: export of {', '.join(formats)} took {time.perf_counter() - t:.0f} s", file=sys.stderr)
            eager = build_deployment(load_checkpoint_model(path))
            programs = {kind: load(p) for kind, p in written.items()}
            labels = {"ts": "TorchScript", "pt2": "ExportedProgram", "aoti": "AOTInductor (dynamic shapes)",
                      "aoti-static": "AOTInductor (static shape, --aoti-size)"}
            for size in SIZES[task]:
                image = scene(size)
                if not args.skip_aoti:  # the package compiled for this one shape
                    static = export_artifacts(path, folder / f"static_{size[0]}x{size[1]}", ("aoti",),
                                              aoti_size=size)["aoti"]
                    programs["aoti-static"] = load(static)
                with torch.no_grad():
                    want = eager(image)
                    fns = {"eager": lambda: eager(image)}
                    for kind, program in programs.items():
                        fns[kind] = (lambda program: lambda: program(image))(program)
                    rows = round_robin(fns, args.repeat)
                    diffs = {kind: difference(program(image), want) for kind, program in programs.items()}
                for name, seconds in rows.items():
                    print(f"| {task} | {size[0]}x{size[1]} | {labels.get(name, 'eager DeployedProgram')} | "
                          f"{1000 * seconds:.0f} | {seconds / rows['eager']:.2f} | {diffs.get(name, '-')} |",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

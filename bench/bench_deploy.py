"""Benchmark of the deployed program (train/deploy.py) against the eager model, on the CPU.

    python bench/bench_deploy.py [--threads 2] [--repeat 5] [--size 512 1024] [--arch small --width 64]
                                 [--torch-export] [--clock wall|cpu]

Writes an untrained checkpoint in the training format (the cityscapes-sized
"base" OM variant, 19 classes; heads scaled so that decoding finds stuff,
things and centers), exports it with ``export_deployment`` and times, on one
uint8 image of --size:

* eager: ``OMModel.predict`` (what training's evaluation runs) and the eager
  ``DeployedProgram`` (same code as the export, not scripted), per stage
  (network = pad + normalise + network + crop; decoding = the generated infer);
* exported: the TorchScript file loaded with ``torch.jit.load``, per stage
  through its ``network_outputs`` / ``decode`` methods;
* with --torch-export: the ``torch.export`` program (dynamic shapes; bench/bench_artifacts.py times every
  artifact kind, AOTInductor included).

Every time is the minimum over --repeat rounds after three warm-up rounds
(TorchScript's profiling executor optimises on the first two calls); each
round runs every row once, in a rotating order, so that the shared machine's
drift hits all rows alike. Prints the
markdown rows of the "Deployment" section of docs/benchmarks.md.
"""
import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime import checkpoint as ckpt  # noqa: E402
from runtime.config import load_config  # noqa: E402
from train.cli import build_network  # noqa: E402
from train.deploy import build_deployment, export_deployment, export_program, load_checkpoint_model  # noqa: E402

CLOCK = time.perf_counter


def make_checkpoint(path: Path, arch: str, width: int, seed: int = 0) -> Path:
    cfg = load_config(ROOT / "train" / "configs" / "synthetic_demo.yaml")
    cfg["om"] = {"spec": "specs/panoptic.yaml", "variant": "base", "targets": "device",
                 "outputs": {"center_heatmap": "center_logits", "offsets": "offset_logits"}}
    cfg["data"] = {"dataset": "cityscapes", "root": str(path.parent / "cityscapes")}
    cfg["model"] = {"arch": arch, "output_stride": 16, "backbone_width": width}
    torch.manual_seed(seed)
    net = build_network(cfg, 19)
    with torch.no_grad():
        # an untrained network's maps are nearly flat: scale the predictors so that the scene below
        # decodes into ~9 classes and ~70 centers (measured at 512x1024), like a busy street scene
        nn.init.normal_(net.net.semantic_head.predictor.weight, std=10.0)
        nn.init.normal_(net.net.center_head.predictor.weight, std=4.0)
        net.net.center_head.predictor.bias.fill_(0.0)
        nn.init.normal_(net.net.offset_head.predictor.weight, std=100.0)
    return ckpt.save_atomic(ckpt.make_state(0, net.eval(), config=copy.deepcopy(cfg)), path)


def round_robin(fns, repeat: int, warmup: int = 3):
    """Minimum time of each function over ``repeat`` rounds, every round running each once (in a rotating
    order), after ``warmup`` rounds: the shared machine's drift hits every row alike."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = CLOCK()
            fns[name]()
            times[name].append(CLOCK() - t)
    return {name: min(ts) for name, ts in times.items()}


def run_cpp(binary: str, program: Path, image: torch.Tensor, threads: int, repeat: int) -> float:
    """Best-of-``repeat`` milliseconds that examples/cpp reports for one image (after 3 warm-up calls)."""
    import re
    import subprocess

    hwc = image[0].permute(1, 2, 0).contiguous().numpy()
    ppm = program.with_name("image.ppm")
    ppm.write_bytes(b"P6\n%d %d\n255\n" % (hwc.shape[1], hwc.shape[0]) + hwc.tobytes())
    proc = subprocess.run([binary, str(program), str(ppm), str(program.with_name("out.ppm")), "--threads",
                           str(threads), "--repeat", str(repeat + 3)], capture_output=True, text=True, check=True)
    return float(re.search(r", ([0-9.]+) ms \(best of", proc.stdout).group(1))


def image_of(size) -> torch.Tensor:
    """A synthetic scene (train/data/synthetic.py) with 20-30 shapes, uint8 [1, 3, H, W]."""
    import numpy as np
    from train.data.synthetic import SyntheticConfig, render_indexed

    cfg = SyntheticConfig(int(size[0]), int(size[1]), min_instances=20, max_instances=30)
    img = render_indexed(0, "val", 0, cfg).image
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].contiguous()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--size", type=int, nargs=2, default=[512, 1024])
    p.add_argument("--arch", default="small", choices=["small", "r50"])
    p.add_argument("--width", type=int, default=64, help="backbone width (64 = torchvision ResNet)")
    p.add_argument("--torch-export", action="store_true", help="also time the torch.export program")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--cpp", default=None, metavar="BINARY",
                   help="also time examples/cpp (its own best-of --repeat, wall clock) built at BINARY")
    args = p.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    size = tuple(args.size)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = make_checkpoint(tmp / "last.pt", args.arch, args.width)
        t = time.perf_counter()
        program_path = export_deployment(path, tmp / "model.ts")
        export_s = time.perf_counter() - t
        cpp_ms = run_cpp(args.cpp, program_path, image_of(size), args.threads, args.repeat) if args.cpp else None
        loaded = load_checkpoint_model(path)
        eager = build_deployment(loaded)
        program = torch.jit.load(str(program_path))
        exported_program = None
        if args.torch_export:
            t = time.perf_counter()
            exported_program = torch.export.load(str(export_program(None, tmp / "model.pt2",
                                                                    loaded=loaded))).module()  # dynamic shapes
            print(f"torch.export took {time.perf_counter() - t:.1f} s", file=sys.stderr)

    image = image_of(size)
    with torch.no_grad():
        out = program(image)
        ref = loaded.model.predict({"image": image})
        same = all(torch.equal(out[k], ref[src]) for k, src in eager.result_map.items())
        centers = int(out["center_valid"].sum())
        things = float((out["instance"] >= 0).float().mean())
        preds_e = eager.network_outputs(image)
        preds_s = program.network_outputs(image)
        fns = {
            "eager OMModel.predict": lambda: loaded.model.predict({"image": image}),
            "eager whole": lambda: eager(image),
            "exported whole": lambda: program(image),
            "eager network": lambda: eager.network_outputs(image),
            "exported network": lambda: program.network_outputs(image),
            "eager decoding": lambda: eager.decode(preds_e),
            "exported decoding": lambda: program.decode(preds_s),
        }
        if exported_program is not None:
            fns["torch.export whole"] = lambda: exported_program(image)
        rows = round_robin(fns, args.repeat)

    print(f"# {args.arch} width {args.width}, image {size[0]}x{size[1]}, {args.threads} threads, "
          f"{args.clock} clock, min of {args.repeat}; {centers} centers, {100 * things:.0f} % thing pixels; "
          f"exported == eager: {same}; export {export_s:.1f} s")
    print("| pipeline | stage | ms | vs eager |")
    print("| --- | --- | ---: | ---: |")
    if cpp_ms is not None:
        rows["C++ whole"] = cpp_ms / 1000.0
    labels = {"C++": "exported, examples/cpp (libtorch)", "eager": "eager DeployedProgram",
              "exported": "exported (torch.jit.load)",
              "torch.export": "torch.export program"}
    for name, seconds in rows.items():
        kind, _, stage = name.rpartition(" ")
        if name == "eager OMModel.predict":
            kind, stage = "eager OMModel.predict", "whole"
        print(f"| {labels.get(kind, kind)} | {stage} | {1000 * seconds:.0f} | {seconds / rows['eager ' + stage]:.2f} |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

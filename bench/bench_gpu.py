"""GPU benchmarks of the generated OMs and of a training step (run where CUDA is available).

    python bench/bench_gpu.py [--quick]

Every time is per image, the median of --repeat CUDA-synchronised runs after
warm-up, beside a floor measured in the same run:
- Panoptic-DeepLab `infer` at 1024x2048, 19 classes, ~30 instances, batch 1 and 8,
  against `semantic_logits.amax(1)` (one read of the logits);
- Panoptic-DeepLab `targets` at batch 8;
- CenterNet `infer` at 512x512 input (128x128 output), 80 classes, batch 1 and 8,
  against a 3x3 max-pool of the heat map;
- a Panoptic-DeepLab training step (small ResNet-18 network, bf16 autocast, batch 8 at
  512x1024) with the OM's share (targets + train entrypoint, fp32).
Prints markdown rows; the device is named in the first line.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generated.centernet.base as centernet  # noqa: E402
import generated.panoptic.base as panoptic  # noqa: E402
from bench_panoptic import outputs, scene  # noqa: E402


DEVICE = "cuda"


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeat: int) -> float:
    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(what: str, seconds: float, n: int, floor: float | None = None, floor_name: str = "") -> str:
    per_image = seconds / n * 1e3
    text = f"| {what} | {n} | {per_image:.3f} ms |"
    if floor is not None:
        text += f" {floor / n * 1e3:.3f} ms ({floor_name}) | {seconds / floor:.1f}x |"
    else:
        text += " | |"
    return text


def panoptic_rows(h: int, w: int, repeat: int) -> list[str]:
    rows = []
    infer = panoptic.Infer().to(DEVICE).eval()
    targets = panoptic.Targets().to(DEVICE)
    for n in (1, 8):
        pan = scene(n, h, w)
        logits, center, offsets = (t.to(DEVICE) for t in outputs(pan))
        with torch.no_grad():
            t_infer = timed(lambda: infer(logits, center, offsets), repeat)
            t_floor = timed(lambda: logits.amax(1), repeat)
        rows.append(row(f"panoptic infer {h}x{w}", t_infer, n, t_floor, "amax(1)"))
        if n == 8:
            pan_cuda = pan.to(DEVICE)
            t_targets = timed(lambda: targets(pan_cuda), repeat)
            t_read = timed(lambda: pan_cuda.amax(1), repeat)
            rows.append(row(f"panoptic targets {h}x{w}", t_targets, n, t_read, "amax(1) of the map"))
    return rows


def centernet_rows(out: int, repeat: int) -> list[str]:
    rows = []
    infer = centernet.Infer().to(DEVICE).eval()
    classes = centernet.CONFIG["num_classes"]
    import inspect
    params = list(inspect.signature(infer.forward).parameters)
    for n in (1, 8):
        g = torch.Generator().manual_seed(0)
        values = {
            "heatmap": torch.randn(n, classes, out, out, generator=g) - 4.0,
            "size": torch.rand(n, 2, out, out, generator=g) * 20,
            "offset": torch.rand(n, 2, out, out, generator=g),
            "class_size": torch.rand(n, classes, 2, out, out, generator=g) * 20,
        }
        args = [values[p].to(DEVICE) for p in params]
        heat = args[params.index("heatmap")]
        with torch.no_grad():
            t_infer = timed(lambda: infer(*args), repeat)
            t_floor = timed(lambda: torch.nn.functional.max_pool2d(heat, 3, 1, 1), repeat)
        rows.append(row(f"centernet infer {out * 4}x{out * 4}, {classes} classes", t_infer, n, t_floor, "3x3 max-pool"))
    return rows


def training_rows(h: int, w: int, repeat: int) -> list[str]:
    from train.model.panoptic_deeplab import panoptic_deeplab_small

    om = panoptic
    net = panoptic_deeplab_small(num_classes=19).to(DEVICE).train()
    train_om, targets_om = om.Train().to(DEVICE), om.Targets().to(DEVICE)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    n = 8
    pan = scene(n, h, w).to(DEVICE)
    images = torch.rand(n, 3, h, w, device=DEVICE)
    om_time = [0.0]

    def step() -> None:
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            out = net(images)
        sync()
        start = time.perf_counter()
        losses = train_om(out["semantic_logits"].float(), out["center_logits"].float(), out["offset_logits"].float(), pan)
        sync()
        om_time[0] += time.perf_counter() - start
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()

    t_step = timed(step, repeat)
    om_time[0] = 0.0
    for _ in range(repeat):
        step()
    share = om_time[0] / repeat / t_step
    t_targets = timed(lambda: targets_om(pan), repeat)
    return [f"| training step, small R18, bf16, batch {n} at {h}x{w} | {n / t_step:.1f} images/s | "
            f"OM (targets + train, fp32) {share * 100:.0f} % of the step; targets alone {t_targets / n * 1e3:.2f} ms/image |"]


def deploy_rows(folder: Path, repeat: int) -> list[str]:
    """Exported program vs the same module eager, both on the device; `folder` holds model.ts (train/deploy.py
    export), eager.pt (torch.save of the eager DeployedProgram) and image.pt (uint8 [1, 3, 512, 1024]).
    Make the folder on the CPU with bench/bench_deploy.py's make_checkpoint and train/deploy.py."""
    eager = torch.load(folder / "eager.pt", weights_only=False).to(DEVICE).eval()
    try:
        program = torch.jit.load(str(folder / "model.ts"), map_location=DEVICE)
    except RuntimeError:  # a file saved by a newer torch: script the same module here (what the export does)
        print(f"(model.ts does not load in torch {torch.__version__}: timing torch.jit.script of eager.pt instead)")
        program = torch.jit.script(eager)
    rows = []
    for n in (1, 8):
        image = torch.load(folder / "image.pt").expand(n, -1, -1, -1).contiguous().to(DEVICE)
        with torch.no_grad():
            t_program = timed(lambda: program(image), repeat)
            t_eager = timed(lambda: eager(image), repeat)
        rows.append(row(f"deployed program (TorchScript), {image.shape[2]}x{image.shape[3]}", t_program, n, t_eager,
                        "same module eager"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test of the script")
    ap.add_argument("--deploy", type=Path, default=None, help="folder with model.ts, eager.pt, image.pt: only "
                    "time the deployed program against its eager module")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs CUDA (or --device cpu for a smoke test)")
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}")
    if args.deploy is not None:
        print("| what | batch | per image | eager per image | ratio |")
        print("| --- | --- | --- | --- | --- |")
        for line in deploy_rows(args.deploy, args.repeat):
            print(line, flush=True)
        return
    h, w = (256, 512) if args.quick else (1024, 2048)
    print("| what | batch | per image | floor per image | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for line in panoptic_rows(h, w, args.repeat) + centernet_rows(32 if args.quick else 128, args.repeat):
        print(line, flush=True)
    print()
    print("| training | throughput | OM share |")
    print("| --- | --- | --- |")
    for line in training_rows(*((128, 256) if args.quick else (512, 1024)), repeat=max(args.repeat // 2, 5)):
        print(line, flush=True)


if __name__ == "__main__":
    main()

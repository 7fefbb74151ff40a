"""`python -m train` (console script `omgen-train`): one command line for every task.

    python -m train train  CONFIG [--set train.steps=100] [--out DIR] [--resume auto] [--overwrite]
    python -m train eval   CONFIG --checkpoint runs/x/last.pt        (an oracle variant needs none)
    python -m train export [CONFIG] --checkpoint runs/x/last.pt [-o model.ts]
    python -m train demo   [CONFIG]      # synthetic data -> train -> eval -> export; prints the task's metric
    python -m train info   CONFIG        # task, OM inputs by role, entrypoints, deployable description
    python -m train data cityscapes ROOT # raw download -> panoptic format (cityscapesscripts' converter)
    python -m train data coco ROOT --split val2017   # check a COCO panoptic layout, count what it holds
    torchrun --nproc_per_node 2 -m train train CONFIG   # DDP, same config

The config names its task (``task: panoptic | detection | pose``; without it,
the spec it names decides: train/tasks/__init__.py) and is checked once
against that task's schema (train/tasks/schema.py). Everything specific to a
task is in train/tasks/; the loop, checkpoints, DDP and the OM plumbing are
in runtime/.

Outputs are never overwritten silently: a run whose folder holds an earlier
run writes to the next free ``DIR-2``, ``DIR-3``, ... (``--overwrite`` reuses
it; ``train --resume`` continues in it); ``eval`` writes its visuals under
``OUT/eval`` (numbered the same way), never over a training run's; ``export``
refuses an existing file unless ``--overwrite``. The folder is printed at the
end.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from runtime.config import ConfigError, load_config
from runtime.om import PROJECT_ROOT
from train.tasks import Task, task_of
from train.tasks.base import fresh_dir, items, split_dataset
from train.tasks.base import model_from_checkpoint as _model_from_checkpoint
from train.tasks.base import run_training as _run_training
from train.tasks.base import settings_from as _settings_from
from train.tasks.panoptic import build_network, ensure_synthetic, pad_collate  # noqa: F401 - the panoptic API
from train.tasks.schema import validate

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEMO_CONFIG = CONFIG_DIR / "synthetic_demo.yaml"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_CODES = "exit status: 0 ok, 1 config / spec / data error (one line on stderr), 2 usage error"


class UsageError(Exception):
    """A command line that cannot run as given (exit status 2)."""


def version() -> str:
    try:
        from importlib.metadata import version as v

        return v("omgen")
    except Exception:  # noqa: BLE001 - not installed: the source tree's own
        import omgen

        return omgen.__version__


def load(config: str | Path, sets: Sequence[str] = (), *, default_task: Optional[str] = None) -> tuple[Task, Dict]:
    """A config with its --set overrides, checked against its task's schema."""
    cfg = load_config(config, sets)
    task = task_of(cfg, default_task)
    validate(cfg, task, str(config))
    return task, cfg


def settings_from(cfg: Mapping[str, Any]):
    return _settings_from(cfg, task_of(cfg).default_out)


# ------------------------------------------------------------------------------------ the panoptic API of old
# (train/cli.py held the panoptic task before train/tasks/ existed; scripts and benches import these names)
def build_dataset(cfg: Mapping[str, Any], split: str, *, train: bool):
    return task_of(cfg).dataset(cfg, split, train=train)


def build_model(cfg: Mapping[str, Any], num_classes: int, thing_ids: Sequence[int] = ()):
    """The panoptic model for a dataset of ``num_classes`` classes whose things are ``thing_ids``."""
    from types import SimpleNamespace

    return task_of(cfg).model(cfg, SimpleNamespace(num_classes=num_classes, thing_train_ids=list(thing_ids)))


def make_evaluator(cfg: Mapping[str, Any], val_ds, out_dir: Path):
    return task_of(cfg).evaluator(cfg, val_ds, Path(out_dir))


def _train_collate(samples, void_id: int):
    from train.tasks.panoptic import train_collate

    return train_collate(samples, void_id)


def run_training(cfg: Dict[str, Any], **kwargs) -> Dict[str, Any]:
    return _run_training(task_of(cfg), cfg, **kwargs)


def model_from_checkpoint(cfg: Dict[str, Any], path):
    return _model_from_checkpoint(task_of(cfg), cfg, path)


# ------------------------------------------------------------------------------------ commands
def _out_dir(task: Task, cfg: Dict[str, Any], args, *, reuse: bool) -> Path:
    if getattr(args, "out", None):
        cfg["out_dir"] = args.out
    out = fresh_dir(cfg.get("out_dir", task.default_out), reuse=reuse or args.overwrite)
    args.asked_out = Path(cfg.get("out_dir", task.default_out))
    cfg["out_dir"] = str(out)
    return out


def _where(label: str, out: Path, asked: Path) -> str:
    moved = "" if out == asked else f" ({asked} holds an earlier run; --overwrite reuses it)"
    return f"{label}: {out}{moved}"


def _print_result(task: Task, result: Mapping[str, Any]) -> None:
    last = result["history"][-1] if result["history"] else {}
    print(f"trained to step {result['step']} in {result['seconds']:.1f} s; last loss "
          f"{last.get('loss', float('nan')):.4f}; checkpoint {result['checkpoint']}")
    if "eval" in result:
        print(task.summary(result["eval"]))


def cmd_train(args) -> int:
    task, cfg = load(args.config, args.set, default_task=args.default_task)
    out = _out_dir(task, cfg, args, reuse=args.resume is not None)
    t = time.perf_counter()
    result = _run_training(task, cfg, resume=args.resume, evaluate=not args.no_eval)
    if result["rank"] != 0:
        return EXIT_OK
    _print_result(task, result)
    summary = {"task": task.name, "variant": cfg["om"].get("variant", "base"), "seed": int(cfg.get("seed", 0)),
               "steps": result["step"], "train_seconds": round(result["seconds"], 1),
               "total_seconds": round(time.perf_counter() - t, 1),
               "last_loss": (result["history"][-1] if result["history"] else {}).get("loss"),
               "checkpoint": result["checkpoint"], **items(result.get("eval", {}), 2)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(_where("run folder", out, args.asked_out), file=sys.stderr)
    print(json.dumps(summary))
    return EXIT_OK


def cmd_eval(args) -> int:
    from runtime.distributed import pick_device

    task, cfg = load(args.config, args.set, default_task=args.default_task)
    if args.official:
        if "official" not in task.eval_keys:
            raise UsageError(f"--official: the {task.name} task has no official evaluator (panoptic has)")
        cfg.setdefault("eval", {})
        cfg["eval"] = {**(cfg["eval"] or {}), "official": True}
    base = Path(args.out) if args.out else Path(cfg.get("out_dir", task.default_out)) / "eval"
    out = fresh_dir(base, reuse=args.overwrite)
    cfg["out_dir"] = str(out)
    if cfg.get("threads"):
        import torch

        torch.set_num_threads(int(cfg["threads"]))
    device = pick_device(str((cfg.get("train", {}) or {}).get("device", "auto")))  # as training: CUDA if there
    val_ds = split_dataset(task, cfg, "val", train=False)
    model = _model_from_checkpoint(task, cfg, args.checkpoint, val_ds).to(device)
    metrics = task.evaluator(cfg, val_ds, out)(model, 0)
    out.mkdir(parents=True, exist_ok=True)
    record = {**items(metrics), "device": str(device)}
    (out / "eval.json").write_text(json.dumps(record, indent=1) + "\n")
    _eval_curves(out, args.checkpoint, metrics)
    print(task.summary(metrics), file=sys.stderr)
    print(_where("eval folder", out, base), file=sys.stderr)
    print(json.dumps(record))
    return EXIT_OK


def _eval_curves(out: Path, checkpoint: Optional[str], metrics: Mapping[str, Any]) -> None:
    """``curves.png`` in the eval folder: the checkpoint's run curves (its folder's metrics.jsonl, when there is
    one) with this evaluation as stars at the run's last step."""
    from runtime.plots import read_metrics, write_curves

    records = read_metrics(Path(checkpoint).parent / "metrics.jsonl") if checkpoint else []
    last = max((r["step"] for r in records if r.get("kind") == "train" and isinstance(r.get("step"), int)),
               default=0)
    source = Path(checkpoint).name if checkpoint else "no checkpoint"
    write_curves(out / "curves.png", records, title=f"{out.name}: {source}", extra_metrics=metrics, extra_step=last)


def export_model(checkpoint: str | Path, path: str | Path, cfg: Optional[Dict[str, Any]] = None,
                 formats: Sequence[str] = ("ts",), **options: Any) -> Path:
    """The deployable program of a checkpoint of any task (train/deploy.py: uint8 images in, the task's outputs
    out); ``cfg``, when given, must name the checkpoint's OM (another spec or variant is refused)."""
    from train.deploy import export_artifacts

    om = (cfg or {}).get("om") or {}
    written = export_artifacts(checkpoint, path, formats, om.get("variant"), spec=om.get("spec"), **options)
    return next(iter(written.values()))


def cmd_export(args) -> int:
    from train.deploy import artifact_paths, run_export

    om: Dict[str, Any] = {}
    if args.config:
        _, cfg = load(args.config, args.set, default_task=args.default_task)
        om = cfg.get("om") or {}
    path = Path(args.output) if args.output else Path(args.checkpoint).parent / "model.ts"
    existing = [str(p) for p in artifact_paths(path, args.format).values() if p.exists()]
    if existing and not args.overwrite:
        raise UsageError(f"{existing[0]} exists: pass --overwrite or another -o")
    run_export(args, args.checkpoint, path, spec=om.get("spec"), variant=om.get("variant"))
    return EXIT_OK


def cmd_demo(args) -> int:
    config = args.config_pos or args.config or DEMO_CONFIG
    t0 = time.perf_counter()
    task, cfg = load(config, args.set, default_task=args.default_task)
    if args.out:
        cfg["data"]["root"] = str(Path(args.out) / "data")
    out = _out_dir(task, cfg, args, reuse=args.resume)
    task.synthetic(cfg)
    t_data = time.perf_counter() - t0
    result = _run_training(task, cfg, resume="auto" if args.resume else None)
    result["model"].eval()
    _print_result(task, result)
    sys.stdout.flush()
    t_export = time.perf_counter()
    program = out / "model.ts"
    path = export_model(result["checkpoint"], program, cfg)
    t_export = time.perf_counter() - t_export
    total = time.perf_counter() - t0
    e = result.get("eval", {})
    summary = {**{k: v for k, v in e.items() if isinstance(v, (int, float))}, "task": task.name,
               "steps": result["step"], "stopped_by_time": result.get("stopped_by_time", False),
               "train_seconds": round(result["seconds"], 1), "data_seconds": round(t_data, 1),
               "eval_seconds": round(e.get("eval_seconds", 0.0), 1), "export_seconds": round(t_export, 1),
               "total_seconds": round(total, 1), "export": str(path), "visuals": str(out / "visuals")}
    (out / "demo.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"exported {path}; visuals in {out / 'visuals'}")
    metric = e.get(task.metric)
    shown = f"{metric:.1f}" if isinstance(metric, (int, float)) else "n/a"
    print(f"demo: {task.metric_label} {shown} on the synthetic val split in {total:.0f} s total "
          f"(data {t_data:.0f} s, train {result['seconds']:.0f} s, eval {summary['eval_seconds']:.0f} s, "
          f"export {t_export:.0f} s)")
    print(_where("run folder", out, args.asked_out))
    return EXIT_OK


def cmd_info(args) -> int:
    target = Path(args.config)
    if target.suffix not in (".yaml", ".yml"):  # a deployed program
        from train.deploy import read_metadata

        print(json.dumps(read_metadata(target), indent=1))
        return EXIT_OK
    from runtime.om import om_from_config

    task, cfg = load(target, args.set, default_task=args.default_task)
    om, om_config = om_from_config(cfg["om"], task.spec)
    effective = {**om.defaults, **om_config}
    info = {"task": task.name, "spec": str(cfg["om"].get("spec", task.spec)), "variant": om.variant,
            "mixins": list(getattr(om.module, "MIXINS", ())),
            "inputs": {n: {k: v for k, v in m.items() if k in ("role", "shape", "dtype")} for n, m in om.inputs.items()},
            "entrypoints": {ep: om.outputs(ep) for ep in om.entrypoints},
            "config": effective, "dataset": (cfg.get("data") or {}).get("dataset"),
            "deploy": task.deploy_spec(cfg, effective).to_json()}
    print(json.dumps(info, indent=1, default=str))
    return EXIT_OK

def cmd_data(args) -> int:
    from train.data import CityscapesPanoptic, CocoPanoptic
    from train.data.cityscapes_raw import DEFAULT_SPLITS, SplitReport, coco_report, prepare_cityscapes, summary_json

    root = Path(args.root)
    if args.dataset == "cityscapes":
        from train.data.cityscapes_panoptic import CITYSCAPES_LABELS_SOURCE

        reports = prepare_cityscapes(root, args.splits or DEFAULT_SPLITS, force=args.force)
        print(f"Cityscapes labels from {CITYSCAPES_LABELS_SOURCE}", file=sys.stderr)
        for r in reports:
            ds = CityscapesPanoptic(root, r.split)  # the loader accepts what was written
            if args.validate:
                ds.validate()
    else:
        if args.force:
            raise UsageError("--force: only the Cityscapes conversion writes files")
        reports: list[SplitReport] = []
        for split in args.splits or ["val2017"]:
            ds = CocoPanoptic.from_root(root, split)
            if args.validate:
                ds.validate()
            reports.append(coco_report(root, split))
    for r in reports:
        print(r.line(), file=sys.stderr)
    print(json.dumps({"dataset": args.dataset, "root": str(root), "splits": summary_json(reports)}))
    return EXIT_OK


# ------------------------------------------------------------------------------------ parser
def _parser(prog: str = "python -m train", default_task: Optional[str] = None) -> argparse.ArgumentParser:
    from train.deploy import add_export_options

    p = argparse.ArgumentParser(prog=prog, description="Train, evaluate, export and inspect omgen models of every "
                                "task (panoptic, detection, pose).", epilog=EXIT_CODES)
    p.add_argument("--version", action="version", version=f"%(prog)s (omgen) {version()}",
                   help="print the version and exit")
    p.set_defaults(default_task=default_task)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=EXIT_CODES)

    def sets(c: argparse.ArgumentParser) -> None:
        c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, dotted keys (train.steps=100, om.variant=oracle-all); "
                            "repeatable")

    def overwrite(c: argparse.ArgumentParser, what: str) -> None:
        c.add_argument("--overwrite", action="store_true",
                       help=f"write into {what} even if it holds an earlier run (default: the next free DIR-2, ...)")

    c = command("train", "train a config's model (checkpoints, metrics.jsonl, evaluation at the end)")
    c.add_argument("config", help="YAML run config (train/configs/*.yaml)")
    sets(c)
    c.add_argument("--out", default=None, help="run folder (default: the config's out_dir)")
    c.add_argument("--resume", default=None, metavar="PATH|auto",
                   help="checkpoint to resume from, or 'auto' (OUT/last.pt if present); continues in OUT")
    c.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end of training")
    overwrite(c, "OUT")
    c.set_defaults(run=cmd_train)

    c = command("eval", "evaluate a checkpoint on the val split (the task's metrics) and write visuals")
    c.add_argument("config", help="YAML run config (train/configs/*.yaml)")
    sets(c)
    c.add_argument("--checkpoint", default=None, help="weights to evaluate (an oracle variant needs none)")
    c.add_argument("--out", default=None, help="folder for visuals and eval.json (default: OUT_DIR/eval)")
    c.add_argument("--official", action="store_true",
                   help="also write the predictions in the dataset's panoptic format and score them with its "
                        "official evaluator (Cityscapes: cityscapesscripts; COCO and synthetic: panopticapi), "
                        "reported beside ours")
    overwrite(c, "that folder")
    c.set_defaults(run=cmd_eval)

    c = command("export", "one program of a checkpoint: network + the OM's infer, uint8 images in, as TorchScript, "
                          "torch.export (dynamic shapes) and/or an AOTInductor package")
    c.add_argument("config", nargs="?", default=None,
                   help="YAML run config (default: the config recorded in the checkpoint; it must name the "
                        "checkpoint's OM)")
    sets(c)
    c.add_argument("--checkpoint", required=True, help="trained weights (a last.pt of python -m train train)")
    c.add_argument("--output", "-o", default=None,
                   help="program file to write (default: CHECKPOINT_DIR/model.ts; .pt2 and .aoti.pt2 beside it)")
    c.add_argument("--overwrite", action="store_true", help="replace the program files if they exist")
    add_export_options(c)
    c.set_defaults(run=cmd_export)

    c = command("demo", "synthetic data -> train -> eval -> export on the CPU; prints the task's metric")
    c.add_argument("config_pos", nargs="?", default=None, metavar="CONFIG",
                   help=f"YAML run config (default {DEMO_CONFIG.relative_to(PROJECT_ROOT)})")
    c.add_argument("--config", default=None, help="the same as CONFIG (kept for older scripts)")
    sets(c)
    c.add_argument("--out", default=None, help="run folder (default: the config's out_dir; data in OUT/data)")
    c.add_argument("--resume", action="store_true", help="resume from OUT/last.pt if present; continues in OUT")
    overwrite(c, "OUT")
    c.set_defaults(run=cmd_demo)

    c = command("info", "what a config builds (task, OM inputs by role, entrypoints, deployable description), "
                        "or a deployed program's metadata")
    c.add_argument("config", help="YAML run config, or a program written by export")
    sets(c)
    c.set_defaults(run=cmd_info)

    c = command("data", "prepare or check a dataset on disk: Cityscapes from its raw download (the official "
                        "conversion), COCO panoptic as downloaded; prints what each split holds")
    c.add_argument("dataset", choices=("cityscapes", "coco"), help="dataset format")
    c.add_argument("root", help="dataset root (Cityscapes: holds gtFine/ and leftImg8bit/; COCO: holds "
                                "annotations/ and the image folders)")
    c.add_argument("--split", action="append", default=None, metavar="NAME", dest="splits",
                   help="split to prepare, repeatable (default: train and val for Cityscapes, val2017 for COCO)")
    c.add_argument("--force", action="store_true",
                   help="Cityscapes: convert again even where the panoptic JSON exists")
    c.add_argument("--validate", action="store_true",
                   help="also decode every image and panoptic PNG (slow on the full dataset)")
    c.set_defaults(run=cmd_data)
    return p


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m train",
         default_task: Optional[str] = None) -> int:
    from runtime.cli import run_command

    parser = _parser(prog, default_task)
    try:
        return run_command(parser, argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

#!/usr/bin/env bash
# The CUDA paths of training, short (docs/training.md, "CUDA training check"):
#   bash scripts/gpu_check.sh [OUTDIR]          # OUTDIR default: $OUT (the device machine's), else runs/gpu_check
# Panoptic-DeepLab (python -m train) with AMP bf16 and fp16 + GradScaler, DDP over nccl under torchrun,
# a kill after a checkpoint then --resume auto, eval of a checkpoint, targets device / inline / loader;
# CenterNet (python -m train.centernet) train + eval; the CUDA regression tests. Each check prints one line,
# PASS / FAIL / SKIP with its numbers, and the script goes on after a failure. Environment knobs:
#   GPU_CHECK_DEVICE (cuda), GPU_CHECK_STEPS (40), GPU_CHECK_LIMIT (seconds per check, 90),
#   GPU_CHECK_TOTAL (seconds for all, 360), GPU_CHECK_WORK (scratch, /tmp/gpu_check), PY (python3),
#   GPU_CHECK_ONLY (names of the checks to run, e.g. "env cn_train cn_eval"; default all).
# Needs: torch, PyYAML, opencv, pycocotools (a wheel in .whl/ is installed into /tmp/site when it is missing;
# see /work/.library/device/README.md). The generated OMs are used as committed (om.compile=false): the
# GPU machine has no libcst, so nothing can be recompiled there.
set -u
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-runs/gpu_check}}
DEV=${GPU_CHECK_DEVICE:-cuda}
STEPS=${GPU_CHECK_STEPS:-40}
LIMIT=${GPU_CHECK_LIMIT:-90}
TOTAL=${GPU_CHECK_TOTAL:-360}
W=${GPU_CHECK_WORK:-/tmp/gpu_check}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUTDIR" "$W/logs"
rm -rf "$W"/pan_* "$W"/cn_* "$W"/logs/*  # the dataset in $W/data stays (regenerated when its settings change)
LOG=$OUTDIR/gpu_check.log
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
RESULTS=()

# one check: NAME FUNCTION; the function prints its numbers on the last line of stdout, returns 0 for PASS
check() {
  local name=$1 fn=$2 t0=$SECONDS rc line
  [ -z "${GPU_CHECK_ONLY:-}" ] || [[ " $GPU_CHECK_ONLY " == *" $name "* ]] || return 0
  if ((SECONDS > TOTAL)); then
    say "SKIP $name: the script's time limit of ${TOTAL} s is spent"; RESULTS+=("SKIP $name"); return
  fi
  "$fn" >"$W/logs/$name.out" 2>>"$W/logs/$name.err"; rc=$?
  line=$(tail -n 1 "$W/logs/$name.out")
  if [ "$rc" = 0 ]; then
    say "PASS $name ($((SECONDS - t0)) s): $line"; RESULTS+=("PASS $name")
  else
    say "FAIL $name ($((SECONDS - t0)) s, rc $rc): $line"; RESULTS+=("FAIL $name")
    grep -v '^\s*$' "$W/logs/$name".* 2>/dev/null | grep -iE 'error|exception|Traceback|assert' | tail -n 6 | sed 's/^/    /' | tee -a "$LOG"
  fi
}
run() {  # run NAME CMD...: time-limited, output in $W/logs/NAME.log
  local name=$1; shift
  timeout -k 5 "$LIMIT" "$@" >>"$W/logs/$name.log" 2>&1
}

# ---------------------------------------------------------------------------------------- helper
cat >"$W/summ.py" <<'EOF'
"""Numbers of a run folder: summ.py train DIR [--pq] [--scale] | weights A B | eval LOG | cn DIR"""
import json, math, sys
from pathlib import Path

def records(d, kind):
    p = Path(d) / "metrics.jsonl"
    return [r for r in map(json.loads, p.read_text().splitlines()) if r["kind"] == kind] if p.exists() else []

cmd, args = sys.argv[1], sys.argv[2:]
ok, parts = True, []
if cmd in ("train", "cn"):
    d = args[0]
    tr = records(d, "train")
    if not tr:
        print(f"no train records in {d}/metrics.jsonl"); sys.exit(1)
    last = tr[-1]
    ok = math.isfinite(last["loss"])
    parts.append(f"step {last['step']}, loss {tr[0]['loss']:.4f} -> {last['loss']:.4f}, "
                 f"{max(r['images_per_s'] for r in tr):.0f} images/s (best window)")
    ev = records(d, "eval")
    if cmd == "train" and "--pq" in args:
        if ev:
            e = ev[-1]; parts.append(f"PQ {e['pq']:.1f} (SQ {e['sq']:.1f} RQ {e['rq']:.1f} mIoU {e['miou']:.1f}, "
                                     f"{e['images']} images in {e['eval_seconds']:.2f} s)")
        else:
            ok = False; parts.append("no eval record")
    if cmd == "cn":
        if ev:
            e = ev[-1]; parts.append(f"AP {e['ap']:.1f} AP50 {e['ap50']:.1f} ({e['images']} images in {e['eval_seconds']:.2f} s)")
        else:
            ok = False; parts.append("no eval record")
    if "--scale" in args:
        import torch
        s = torch.load(Path(d) / "last.pt", map_location="cpu", weights_only=False)["scaler"]
        if s is None:
            ok = False; parts.append("no GradScaler state in the checkpoint")
        else:
            parts.append(f"GradScaler scale {s['scale']:g}")
elif cmd == "weights":
    import torch
    a, b = (torch.load(Path(p) / "last.pt", map_location="cpu", weights_only=False) for p in args[:2])
    diff = max(float((a["model"][k].double() - b["model"][k].double()).abs().max()) for k in a["model"]
               if a["model"][k].is_floating_point())
    size = max(float(v.double().abs().max()) for v in a["model"].values() if v.is_floating_point())
    ok = a["step"] == b["step"]
    parts.append(f"steps {a['step']} / {b['step']}, max |w_resumed - w_uninterrupted| {diff:.3g} (max |w| {size:.3g})")
elif cmd == "eval":
    text = Path(args[0]).read_text().strip().splitlines()
    js = [json.loads(l) for l in text if l.startswith("{")]
    if not js:
        print("no JSON printed"); sys.exit(1)
    e = js[-1]
    ok = e.get("device", "").startswith(args[1]) if len(args) > 1 else True
    if "pq" in e:
        parts.append(f"PQ {e['pq']:.1f} (SQ {e['sq']:.1f} RQ {e['rq']:.1f} mIoU {e['miou']:.1f}), {e['images']} images "
                     f"in {e['eval_seconds']:.2f} s on {e.get('device', '?')}")
    else:
        parts.append(f"AP {e['ap']:.1f} AP50 {e['ap50']:.1f}, {e['images']} images in {e['eval_seconds']:.2f} s "
                     f"on {e.get('device', '?')}")
    if len(args) > 2:  # compare with the eval record written by training
        ev = records(args[2], "eval")
        if ev:
            key = "pq" if "pq" in e else "ap"
            parts.append(f"(after training: {ev[-1][key]:.1f})")
print("; ".join(parts))
sys.exit(0 if ok else 1)
EOF

# ---------------------------------------------------------------------------------------- the checks
PAN=(train/configs/synthetic_demo.yaml --set om.compile=false --set "train.device=$DEV"
     --set "data.root=$W/data" --set "data.generate={train: 256, val: 32, size: 128, seed: 0}"
     --set "train.steps=$STEPS" --set train.log_every=10 --set train.ckpt_every=10 --set train.warmup_steps=5
     --set train.progress=false --set train.tensorboard=false --set train.time_budget_s=600
     --set threads=4 --set train.workers=2 --set eval.visualize=2)
CN=(train/configs/centernet_synthetic.yaml --set om.compile=false --set "train.device=$DEV"
    --set "data.root=$W/data" --set "data.generate={train: 256, val: 32, size: 128, seed: 0}"
    --set "train.steps=$STEPS" --set train.log_every=10 --set train.ckpt_every=10 --set train.warmup_steps=5
    --set train.time_budget_s=600 --set threads=4 --set train.workers=2)
# time_budget_s 600: far above a run's time, so the lr follows the steps (a budget near the run's time makes the
# lr depend on the CUDA warm-up, and runs differ), yet the time-budget flag is still all-reduced every step (DDP)

env_check() {
  {
    date -u; nvidia-smi -L; uname -m
    $PY -c "import sys, torch; print(sys.version.split()[0], torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.is_available() and torch.cuda.get_device_name(0), 'nccl', torch.distributed.is_nccl_available())"
  } 2>&1 | tee -a "$LOG"
  say "pip list (filtered; whole list in pip_list.txt): $(grep -iE '^(torch|numpy|pyyaml|opencv|pycocotools|libcst|jinja2|tqdm|tensorboard|pillow|scipy) ' "$OUTDIR/pip_list.txt" | awk '{printf "%s %s, ", $1, $2}')"
  [ -z "$INSTALLED" ] || say "$INSTALLED"
  local missing
  missing=$($PY -c "
import importlib
print(' '.join(m for m in ('yaml', 'cv2', 'pycocotools', 'libcst', 'jinja2', 'tqdm') if importlib.util.find_spec(m) is None))")
  say "modules missing: ${missing:-none}"
  # compile: true where the compiler cannot be imported -> the committed generated/ file, with a warning
  $PY -W always -c "from runtime.om import load_om; om = load_om('specs/panoptic.yaml', 'synthetic'); print('load_om(compile=True):', om.name, om.variant)" 2>&1 | tail -n 2 | tee -a "$LOG"
  $PY -c "import yaml, cv2, pycocotools" || return 1
  echo "torch + CUDA + yaml/cv2/pycocotools import"
}

pan_bf16() {  # AMP bf16 on CUDA, targets: device (the demo config's), eval after training
  run pan_bf16 $PY -m train train "${PAN[@]}" --set train.amp=bf16 --out "$W/pan_bf16" || return $?
  $PY "$W/summ.py" train "$W/pan_bf16" --pq
}

pan_fp16() {  # fp16 autocast + GradScaler, with gradient clipping (unscale_)
  run pan_fp16 $PY -m train train "${PAN[@]}" --set train.amp=fp16 --set train.grad_clip=10 --out "$W/pan_fp16" || return $?
  $PY "$W/summ.py" train "$W/pan_fp16" --pq --scale
}

pan_repeat() {  # the pan_bf16 run again: how far two uninterrupted CUDA runs differ (nondeterministic kernels)
  run pan_repeat $PY -m train train "${PAN[@]}" --set train.amp=bf16 --set eval.enabled=false --out "$W/pan_repeat" || return $?
  $PY "$W/summ.py" weights "$W/pan_repeat" "$W/pan_bf16" | sed 's/w_resumed/w_repeat/'
}

pan_resume() {  # the pan_bf16 run, killed (os._exit, no cleanup) at step 15, after the checkpoint of step 10
  run pan_resume $PY - "${PAN[@]}" --set train.amp=bf16 --out "$W/pan_resume" <<'EOF'
import os, sys
from runtime.config import load_config
from train.cli import run_training
args = sys.argv[1:]
config, sets, out = args[0], [args[i + 1] for i, a in enumerate(args) if a == "--set"], args[args.index("--out") + 1]
cfg = load_config(config, sets)
cfg["out_dir"] = out
def kill(step, losses):
    if step == 15:
        print("killed at step 15", flush=True)
        os._exit(137)
run_training(cfg, on_step=kill)
EOF
  local rc=$?
  [ "$rc" = 137 ] || { echo "the killed run exited $rc, not 137"; return 1; }
  local k; k=$($PY -c "import torch; print(torch.load('$W/pan_resume/last.pt', map_location='cpu', weights_only=False)['step'])")
  run pan_resume $PY -m train train "${PAN[@]}" --set train.amp=bf16 --out "$W/pan_resume" --resume auto || return $?
  echo "checkpoint at the kill: step $k; $($PY "$W/summ.py" train "$W/pan_resume" --pq); $($PY "$W/summ.py" weights "$W/pan_resume" "$W/pan_bf16")$(
    [ -f "$W/pan_repeat/last.pt" ] && echo "; to pan_repeat: $($PY "$W/summ.py" weights "$W/pan_resume" "$W/pan_repeat" | sed 's/.*, max/max/')")"
  [ "$k" = 10 ]
}

pan_eval() {  # python -m train eval of the bf16 checkpoint, on CUDA
  [ -f "$W/pan_bf16/last.pt" ] || { echo "no checkpoint from pan_bf16"; return 1; }
  run pan_eval $PY -m train eval "${PAN[@]}" --checkpoint "$W/pan_bf16/last.pt" --out "$W/pan_eval" || return $?
  $PY "$W/summ.py" eval "$W/logs/pan_eval.log" "$DEV" "$W/pan_bf16"
}

pan_ddp() {  # torchrun, 1 process, nccl process group and DDP (forced: runtime only initialises for world > 1)
  cat >"$W/ddp_driver.py" <<'EOF'
import os, sys
import torch.distributed as dist
import runtime.distributed as rd
import runtime.trainer as rt
dev = rd.pick_device(os.environ.get("GPU_CHECK_DEVICE", "cuda"))
dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
rd.DistInfo.enabled = property(lambda self: dist.is_initialized())  # DDP, all-reduces and barriers for 1 process
held = []
fit = rt.Trainer.fit
def fit_and_hold(self, *a, **k):
    held.append(self)
    return fit(self, *a, **k)
rt.Trainer.fit = fit_and_hold
from train.cli import main
rc = main(sys.argv[1:])
t = held[0]
print(f"backend {dist.get_backend() if dist.is_initialized() else 'none (destroyed)'}; world {t.dist.world_size}; "
      f"network {type(t.net).__name__}; rc {rc}", flush=True)
sys.exit(rc)
EOF
  GPU_CHECK_DEVICE=$DEV run pan_ddp $PY -m torch.distributed.run --standalone --nproc_per_node 1 "$W/ddp_driver.py" \
    train "${PAN[@]}" --set train.amp=bf16 --out "$W/pan_ddp" || return $?
  echo "$(grep -h '^backend' "$W/logs/pan_ddp.log" | tail -n 1); $($PY "$W/summ.py" train "$W/pan_ddp" --pq)"
  grep -q "network DistributedDataParallel" "$W/logs/pan_ddp.log"
}

pan_targets() {  # one batch, the same network: losses with targets inline / device / loader, float32 on CUDA
  run pan_targets $PY - "${PAN[@]}" <<'EOF'
import functools, sys, time
import torch
from runtime.config import load_config
from runtime.distributed import pick_device
from runtime.model import TargetsCollate
from runtime.trainer import to_device
from train.cli import _train_collate, build_dataset, build_model
args = sys.argv[1:]
cfg = load_config(args[0], [args[i + 1] for i, a in enumerate(args) if a == "--set"])
dev = pick_device(cfg["train"]["device"])
ds = build_dataset(cfg, "train", train=True)
collate = functools.partial(_train_collate, void_id=ds.void_id)
samples = [ds[i] for i in range(8)]
losses = {}
for mode in ("inline", "device", "loader"):
    cfg["om"]["targets"] = mode
    torch.manual_seed(0)
    model = build_model(cfg, ds.num_classes, ds.thing_train_ids).to(dev).train()
    c = TargetsCollate(collate, model.om, model.om_config, model.truth_map) if mode == "loader" else collate
    batch = to_device(c(samples), dev)
    torch.manual_seed(1)
    out = model.network(*model.network_args(batch))
    model.losses_from(out, batch)  # warm-up: the first call's one-time costs are not timed
    torch.cuda.synchronize() if dev.type == "cuda" else None
    t = time.perf_counter()
    for _ in range(5):
        l = model.losses_from(out, batch)
        torch.cuda.synchronize() if dev.type == "cuda" else None
    ms = (time.perf_counter() - t) / 5 * 1e3
    l["loss"].backward()
    losses[mode] = ({k: float(v) for k, v in l.items()}, ms, batch["image"].device)
ref = losses["inline"][0]
diff = max(abs(v[0][k] - ref[k]) / max(abs(ref[k]), 1e-12) for v in losses.values() for k in ref)
print("; ".join(f"{m}: loss {v[0]['loss']:.5f}, OM {v[1]:.1f} ms/batch of 8 on {v[2]}" for m, v in losses.items())
      + f"; max relative difference to inline {diff:.2g}")
sys.exit(0 if diff < 1e-4 and all(v[2].type == dev.type for v in losses.values()) else 1)
EOF
  local rc=$?; tail -n 1 "$W/logs/pan_targets.log"; return $rc
}

cn_train() {  # CenterNet, targets: device, AMP bf16, eval (box AP) after training
  run cn_train $PY -m train.centernet train "${CN[@]}" --set om.targets=device --set train.amp=bf16 --out "$W/cn_train" || return $?
  $PY "$W/summ.py" cn "$W/cn_train"
}

cn_eval() {
  [ -f "$W/cn_train/last.pt" ] || { echo "no checkpoint from cn_train"; return 1; }
  run cn_eval $PY -m train.centernet eval "${CN[@]}" --checkpoint "$W/cn_train/last.pt" || return $?
  $PY "$W/summ.py" eval "$W/logs/cn_eval.log" "$DEV" "$W/cn_train"
}

cn_fp16() {  # CenterNet, targets: inline (the config's), fp16 + GradScaler with grad_clip 10 (the config's)
  run cn_fp16 $PY -m train.centernet train "${CN[@]}" --set train.amp=fp16 --out "$W/cn_fp16" || return $?
  local a b rc=0
  a=$($PY "$W/summ.py" cn "$W/cn_fp16") || rc=1
  b=$($PY "$W/summ.py" train "$W/cn_fp16" --scale) || rc=1
  echo "$a; ${b##*; }"; return $rc
}

cn_loader() {  # CenterNet no-offset (no offset head), targets in the loader workers (heatmap stand-in), bf16, eval
  run cn_loader $PY -m train.centernet train "${CN[@]}" --set om.targets=loader --set om.variant=no-offset \
    --set train.amp=bf16 --out "$W/cn_loader" || return $?
  $PY "$W/summ.py" cn "$W/cn_loader"
}

cuda_tests() {
  run cuda_tests $PY -m pytest -q -p no:cacheprovider tests/runtime/test_cuda_paths.py; local rc=$?
  tail -n 1 "$W/logs/cuda_tests.log"; return $rc
}

$PY -m pip list 2>/dev/null >"$OUTDIR/pip_list.txt"  # before the wheel below: what the machine has
INSTALLED=
if ! $PY -c "import pycocotools" 2>/dev/null && ls .whl/pycocotools-*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/pycocotools-*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" && INSTALLED="installed pycocotools from .whl/ into /tmp/site"
fi
say "== scripts/gpu_check.sh: device $DEV, $STEPS steps per run, ${LIMIT} s per check, ${TOTAL} s in all; logs in $W/logs"
check env env_check
check pan_bf16 pan_bf16
check pan_fp16 pan_fp16
check pan_eval pan_eval
check pan_targets pan_targets
check pan_ddp_nccl pan_ddp
check pan_repeat pan_repeat
check pan_resume pan_resume
check cn_train cn_train
check cn_eval cn_eval
check cn_fp16 cn_fp16
check cn_loader cn_loader
check cuda_tests cuda_tests
say "== ${SECONDS} s: $(printf '%s\n' "${RESULTS[@]}" | cut -d' ' -f1 | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
tar -czf "$OUTDIR/logs.tar.gz" -C "$W" logs summ.py $(cd "$W" && ls -d */metrics.jsonl 2>/dev/null) 2>/dev/null
! printf '%s\n' "${RESULTS[@]}" | grep -q '^FAIL'

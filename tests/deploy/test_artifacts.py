"""One deployable program for every task, in three artifact kinds (TorchScript, torch.export, AOTInductor).

Each artifact must equal the eager program (``DeployedProgram`` run in
Python) on images of several sizes and batch sizes from one export, answer a
bad image with the same one-line ValueError through runtime.deployed.load,
carry its metadata, and run where the project is not importable.
"""
import json
import re
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from deploy_helpers import synthetic_image, tiny_config, write_checkpoint
from runtime.deployed import load, read_meta
from train.deploy import build_deployment, export_artifacts, load_checkpoint_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

ROOT = Path(__file__).resolve().parents[2]
# (height, width, batch): a multiple of the stride, another, and an odd size (padded inside the program)
SIZES = [(128, 128, 2), (96, 160, 1), (77, 101, 2)]
# torch.export with dynamic shapes takes ~25 s a program on 2 cores (sympy): one variant per task is exported both
# ways (pose's base through the command line: test_cli_export_writes_the_formats_asked_for_any_task); the other
# deployable variants (another head set, another OM) as TorchScript, which takes ~1 s.
CASES = [("panoptic", "synthetic", ("ts", "pt2")), ("detection", "base", ("ts", "pt2")),
         ("detection", "no-offset", ("ts",)), ("detection", "class-specific-size", ("ts",)),
         ("pose", "no-joint-heatmap", ("ts",))]
OUTPUTS = {"panoptic": ["panoptic", "semantic", "instance", "centers", "center_scores", "center_valid"],
           "detection": ["boxes", "scores", "classes"], "pose": ["boxes", "scores", "keypoints"]}


_LOADED: dict = {}


def loaded(path: Path):
    """runtime.deployed.load(path), once per file and process: a dynamic-shape torch.export program takes ~10-20 s
    to deserialise on 2 cores (sympy), and the programs are stateless, so the tests of one artifact share it."""
    key = (Path(path).resolve(), Path(path).stat().st_mtime_ns)
    if key not in _LOADED:
        _LOADED[key] = load(path)
    return _LOADED[key]


def images(height: int, width: int, batch: int) -> torch.Tensor:
    return torch.stack([synthetic_image(i, (height, width)) for i in range(batch)])


def assert_equal_outputs(got: dict, want: dict, atol: float = 0.0) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        if value.dtype.is_floating_point and atol > 0:
            torch.testing.assert_close(got[name], value, atol=atol, rtol=0, msg=name)
        else:
            assert torch.equal(got[name], value), f"{name} differs"


# ------------------------------------------------------------------------------------ ts and pt2, every task
def exported_case(task: str, variant: str, *more):
    """A (task, variant, ...) parameter whose tests share one worker, so that its programs are exported once."""
    return pytest.param(task, variant, *more, id=f"{task}-{variant}", marks=pytest.mark.xdist_group(f"{task}-{variant}"))


@pytest.mark.parametrize("task, variant, kinds", [exported_case(t, v, k) for t, v, k in CASES])
def test_ts_and_pt2_equal_the_eager_program_at_every_size(task, variant, kinds, task_checkpoints, exported_programs):
    written = exported_programs(task, variant, kinds)
    assert tuple(written) == kinds and ("pt2" not in written or written["pt2"].name == "model.pt2")
    assert_programs_equal_eager(task, task_checkpoints(task, variant), written)


def assert_programs_equal_eager(task: str, checkpoint: Path, written: dict) -> None:
    eager = build_deployment(load_checkpoint_model(checkpoint))
    programs = {kind: loaded(path) for kind, path in written.items()}
    for height, width, batch in SIZES:
        x = images(height, width, batch)
        with torch.no_grad():
            want = eager(x)
        assert list(want) == OUTPUTS[task]
        found = want["center_valid"].sum() if task == "panoptic" else (want["scores"] > 0.1).sum()
        assert int(found) > 0, "the test checkpoint decodes nothing: the comparison would be vacuous"
        for kind, program in programs.items():
            assert_equal_outputs(program(x), want)  # CPU, same kernels: exactly equal, floats too


@pytest.mark.parametrize("task, variant", [exported_case("panoptic", "synthetic"), exported_case("detection", "base")])
def test_metadata_of_every_kind(task, variant, exported_programs):
    written = exported_programs(task, variant)
    ts, pt2 = read_meta(written["ts"]), read_meta(written["pt2"])
    for meta, kind in ((ts, "ts"), (pt2, "pt2")):
        assert meta["format"] == "omgen-deployment/1" and meta["task"] == task
        assert meta["variant"] == variant and meta["artifact"]["kind"] == kind
        assert meta["output_order"] == OUTPUTS[task]
        assert meta["input"]["max_pixels"] == 4 * 1024 * 1024 and meta["input"]["dtype"] == "uint8"
        assert re.fullmatch(r"[0-9a-f]{16}", meta["om_hash"])
    assert "dims" not in ts["input"]
    lowest = 1 if task == "panoptic" else 33  # CenterNet's ops need more than one block of the stride
    assert pt2["input"]["dims"] == {"batch": [1, 64], "height": [lowest, 8192], "width": [lowest, 8192]}
    if task == "detection":
        assert ts["num_classes"] == 3 and ts["boxes"].startswith("x1, y1, x2, y2")
    else:
        assert ts["thing_ids"] == [1, 3, 5] and ts["void_id"] == 255000


def test_oracle_variants_are_not_deployable(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["om"]["variant"] = "oracle-centers"
    cfg["om"]["config_from"] = "synthetic"  # the synthetic classes
    checkpoint = write_checkpoint(tmp_path / "last.pt", cfg)
    with pytest.raises(ValueError) as info:
        export_artifacts(checkpoint, tmp_path / "m.ts", ("ts",))
    message = str(info.value)
    assert "\n" not in message and "variant 'oracle-centers': its infer reads ground truth" in message
    assert not list(tmp_path.glob("m*")) and not list(tmp_path.glob(".m*"))


# ------------------------------------------------------------------------------------ bad input, every kind
BAD = [
    (torch.zeros(3, 64, 64, dtype=torch.uint8), "image: expected a uint8 batch [N, 3, H, W], got rank 3"),
    (torch.zeros(1, 3, 64, 64), "image: expected dtype uint8 (0..255 RGB), got float32 shape [1, 3, 64, 64]"),
    (torch.zeros(1, 4, 64, 64, dtype=torch.uint8), "image: expected 3 channels (RGB, [N, 3, H, W]), got 4"),
    (torch.zeros(0, 3, 64, 64, dtype=torch.uint8), "image: empty batch or image, shape [0, 3, 64, 64]"),
    (torch.zeros(1, 3, 2048, 4096, dtype=torch.uint8).expand(2, 3, 2048, 4096),
     "image: 16777216 pixels (batch x height x width) in shape [2, 3, 2048, 4096], over this program's limit"),
]


@pytest.fixture()
def panoptic_artifacts(exported_programs):
    return exported_programs("panoptic", "synthetic")


@pytest.mark.xdist_group("panoptic-synthetic")
@pytest.mark.parametrize("kind", ["ts", "pt2"])
def test_every_kind_answers_a_bad_image_with_one_line(panoptic_artifacts, kind):
    program = loaded(panoptic_artifacts[kind])
    for image, message in BAD:
        with pytest.raises(ValueError) as info:
            program(image)
        assert str(info.value) == str(info.value).strip() and "\n" not in str(info.value)
        assert str(info.value).startswith(message)


@pytest.mark.xdist_group("detection-base")  # the programs of test_ts_and_pt2_equal_the_eager_program_at_every_size
def test_pt2_refuses_sizes_outside_its_traced_range(exported_programs):
    program = loaded(exported_programs("detection", "base")["pt2"])
    with pytest.raises(ValueError, match=r"^image: batch 65 in shape \[65, 3, 64, 64\] is outside this program's "
                                         r"range 1\.\.64$"):
        program(images(64, 64, 1).expand(65, 3, 64, 64))
    with pytest.raises(ValueError, match=r"^image: height 32 .* range 33\.\.8192$"):
        program(images(32, 64, 1))


# ------------------------------------------------------------------------------------ without the project
FRESH = textwrap.dedent("""
    import importlib.util, json, sys
    sys.path.append({site!r})
    for name in ("omgen", "train", "runtime", "generated"):
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit("the project is importable: " + name)
    import torch
    torch.set_num_threads({threads})
    spec = importlib.util.spec_from_file_location("deployed", {loader!r})
    deployed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deployed)
    images = torch.load({inputs!r})
    result = {{}}
    for kind, path in {paths!r}.items():
        program = deployed.load(path)
        try:
            program(images[0].float())
            error = "accepted"
        except ValueError as exc:
            error = str(exc)
        result[kind] = {{"outputs": [program(x) for x in images], "error": error,
                        "variant": program.meta["variant"]}}
    if "pt2" in {paths!r}:
        raw = torch.export.load({paths!r}["pt2"]).module()  # torch alone, no loader
        result["raw_pt2"] = raw(images[0])
    torch.save(result, {result!r})
""")


def run_fresh(paths: dict, batches, tmp_path: Path) -> dict:
    """Run FRESH (the standalone loader, torch only) in `python -I -S` on ``paths`` {kind: program}."""
    site = str(Path(torch.__file__).resolve().parents[1])
    loader = shutil.copy(ROOT / "runtime" / "deployed.py", tmp_path / "omgen_deployed.py")  # the file alone
    torch.save(batches, tmp_path / "inputs.pt")
    code = FRESH.format(site=site, loader=str(loader), inputs=str(tmp_path / "inputs.pt"), paths=paths,
                        result=str(tmp_path / "result.pt"), threads=torch.get_num_threads())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(tmp_path / "result.pt")


@pytest.mark.xdist_group("panoptic-synthetic")
def test_artifacts_run_in_a_fresh_process_without_the_project(panoptic_artifacts, tmp_path):
    batches = [images(77, 101, 2)]
    paths = {kind: str(p) for kind, p in panoptic_artifacts.items()}
    result = run_fresh(paths, batches, tmp_path)
    reference = loaded(panoptic_artifacts["ts"])
    for kind in paths:
        assert result[kind]["variant"] == "synthetic"
        assert result[kind]["error"].startswith("image: expected dtype uint8 (0..255 RGB), got float32")
        for x, got in zip(batches, result[kind]["outputs"]):
            assert_equal_outputs(got, reference(x))
    assert_equal_outputs(dict(result["raw_pt2"]), reference(batches[0]))


@pytest.mark.xdist_group("panoptic-synthetic")
def test_info_reads_every_kind(panoptic_artifacts, capsys):
    from train.cli import main

    for kind, path in panoptic_artifacts.items():
        assert main(["info", str(path)]) == 0
        assert json.loads(capsys.readouterr().out)["artifact"]["kind"] == kind


def test_cli_export_writes_the_formats_asked_for_any_task(task_checkpoints, tmp_path, capsys):
    """Pose's base exported both ways by `python -m train export`: the programs equal the eager one at every size
    (batches within --max-batch 3) and refuse a batch beyond it."""
    from train.cli import main

    checkpoint = task_checkpoints("pose", "base")
    out = tmp_path / "pose.ts"
    assert main(["export", "--checkpoint", str(checkpoint), "-o", str(out), "--format", "pt2,ts",
                 "--max-batch", "3"]) == 0
    printed = capsys.readouterr().out
    assert "torch.export, dynamic batch 1..3" in printed and "pose: specs/pose.yaml variant 'base'" in printed
    assert out.exists() and (tmp_path / "pose.pt2").exists()
    assert main(["export", "--checkpoint", str(checkpoint), "-o", str(out), "--format", "ts"]) == 2
    assert "exists: pass --overwrite" in capsys.readouterr().err
    meta = read_meta(tmp_path / "pose.pt2")
    assert meta["joint_names"][0] == "nose" and len(meta["skeleton"]) > 10
    assert meta["input"]["dims"]["batch"] == [1, 3]
    assert_programs_equal_eager("pose", checkpoint, {"ts": out, "pt2": tmp_path / "pose.pt2"})
    program = loaded(tmp_path / "pose.pt2")
    assert program(images(64, 96, 3))["boxes"].shape[0] == 3
    with pytest.raises(ValueError, match=r"^image: batch 4 in shape \[4, 3, 64, 96\] is outside this program's "
                                         r"range 1\.\.3$"):
        program(images(64, 96, 1).expand(4, 3, 64, 96))


# ------------------------------------------------------------------------------------ AOTInductor
@pytest.mark.aoti
@pytest.mark.slow
@pytest.mark.parametrize("task, variant", [("panoptic", "synthetic"), ("detection", "base")])
def test_aoti_package_equals_the_eager_program(task, variant, task_checkpoints, aoti_package):
    """The dynamic-shape package of each OM at every size (~1 min CenterNet, ~2 min panoptic on 2 cores: slow, runs
    with OMGEN_SLOW_TESTS=1; CI compiles the one-size package below): integer outputs equal, floats within 1e-4."""
    checkpoint = task_checkpoints(task, variant)
    path = aoti_package(task, variant)
    assert path.name == "model.aoti.pt2" and read_meta(path)["artifact"] == {"kind": "aoti", "device": "cpu"}
    assert read_meta(path)["input"]["dims"]["batch"] == [1, 64]
    assert_aoti_equals_eager(load(path), checkpoint, [images(h, w, n) for h, w, n in SIZES])


def assert_aoti_equals_eager(program, checkpoint, batches) -> None:
    """An AOTInductor package against the eager program: integer outputs equal, floats within 1e-4 (Inductor's
    kernels round differently), and the bad images refused with the shared one-line messages."""
    eager = build_deployment(load_checkpoint_model(checkpoint))
    for x in batches:
        with torch.no_grad():
            want = eager(x)
        got = program(x)
        assert list(got) == list(want)
        for name, value in want.items():
            if value.dtype.is_floating_point:
                torch.testing.assert_close(got[name], value, atol=1e-4, rtol=1e-4, msg=name)
            else:
                assert torch.equal(got[name], value), name
    for image, message in BAD[:4]:
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            program(image)


AOTI_SIZE = (96, 128)  # the one package CI compiles (also run by tests/deploy/test_cpp.py)


@pytest.mark.aoti
@pytest.mark.xdist_group("compiled")  # with tests/deploy/test_cpp.py: one AOTInductor compile
def test_aoti_package_runs_in_a_fresh_process_without_the_project(aoti_package, tmp_path):
    package = aoti_package("detection", "base", AOTI_SIZE)
    batches = [images(*AOTI_SIZE, 1), images(*AOTI_SIZE, 1) // 2]
    result = run_fresh({"aoti": str(package)}, batches, tmp_path)
    assert result["aoti"]["error"].startswith("image: expected dtype uint8 (0..255 RGB), got float32")
    reference = load(package)
    for x, got in zip(batches, result["aoti"]["outputs"]):
        assert_equal_outputs(got, reference(x))


@pytest.mark.aoti
@pytest.mark.xdist_group("compiled")  # with tests/deploy/test_cpp.py: one AOTInductor compile
def test_aoti_package_of_one_static_size(task_checkpoints, aoti_package):
    """--aoti-size H W: a package compiled for one shape (faster CPU kernels, a third of the compile time) equals
    the eager program there (integers equal, floats within 1e-4) and refuses every other shape in one line."""
    checkpoint = task_checkpoints("detection", "base")
    path = aoti_package("detection", "base", AOTI_SIZE)
    assert path.name == "model.aoti.pt2" and read_meta(path)["artifact"] == {"kind": "aoti", "device": "cpu"}
    assert read_meta(path)["input"]["dims"] == {"batch": [1, 1], "height": [96, 96], "width": [128, 128]}
    program = load(path)
    assert_aoti_equals_eager(program, checkpoint,
                             [images(*AOTI_SIZE, 1), torch.full((1, 3, *AOTI_SIZE), 255, dtype=torch.uint8)])
    with pytest.raises(ValueError, match=r"^image: height 64 in shape \[1, 3, 64, 128\] is outside this program's "
                                         r"range 96\.\.96$"):
        program(images(64, 128, 1))

"""train.deploy: checkpoint -> one TorchScript program (normalisation + network + generated infer).

The program must equal the eager model, run where the project is not
importable, carry its metadata, refuse bad images with a one-line ValueError
and refuse checkpoints of another OM.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from deploy_helpers import synthetic_image, tiny_config, write_checkpoint
from train.deploy import (
    build_deployment,
    export_deployment,
    export_onnx,
    main,
    read_metadata,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
OUT_NAMES = {"panoptic": "panoptic_pred", "semantic": "semantic_pred", "instance": "instance_pred",
             "centers": "centers_pred", "center_scores": "center_scores", "center_valid": "center_valid"}


def assert_same(got: dict, want: dict, names=OUT_NAMES) -> None:
    assert set(got) == set(names)
    for name, src in names.items():
        assert got[name].dtype == want[src].dtype, name
        assert torch.equal(got[name], want[src]), f"{name} differs"


def eager_reference(loaded, image: torch.Tensor) -> dict:
    """What the eager training-side model predicts for ``image``, padded to a multiple of 32 for the
    network (zeros, as pad_collate does) and cropped back before decoding."""
    model = loaded.model
    h, w = image.shape[-2:]
    ph, pw = (-h) % 32, (-w) % 32
    padded = F.pad(image, [0, pw, 0, ph])
    with torch.no_grad():
        net_out = model.network(padded)
        preds = {k: v[:, :, :h, :w] for k, v in model.predictions(net_out).items()}
        return model.decode(preds)


# ------------------------------------------------------------------------------------ equality
def test_scripted_program_equals_eager_model(exported, loaded):
    program = torch.jit.load(str(exported))
    batch = torch.stack([synthetic_image(0), synthetic_image(1)])  # 128x128: no padding
    with torch.no_grad():
        want = loaded.model.predict({"image": batch})
        got = program(batch)
    assert_same(got, want)
    assert got["panoptic"].shape == (2, 1, 128, 128)
    # decoding is not trivial on these images: stuff, things and several centers
    ids = got["panoptic"].unique()
    meta = read_metadata(exported)
    classes = set((ids // meta["label_divisor"]).tolist())
    assert classes & set(meta["thing_ids"]) and classes - set(meta["thing_ids"])
    assert (ids % meta["label_divisor"] > 0).sum() > 1
    assert int(got["center_valid"].sum()) > 2


@pytest.mark.parametrize("size", [(100, 120), (37, 64)])
def test_odd_sizes_are_padded_then_cropped(exported, loaded, size):
    program = torch.jit.load(str(exported))
    image = synthetic_image(2, size)[None]
    with torch.no_grad():
        got = program(image)
        eager = build_deployment(loaded)(image)
    want = eager_reference(loaded, image)
    assert_same(got, want)
    assert_same(eager, want)
    assert got["panoptic"].shape == (1, 1) + size


def test_stages_compose(exported):
    program = torch.jit.load(str(exported))
    image = synthetic_image(0)[None]
    preds = program.network_outputs(image)
    assert set(preds) == {"semantic_logits", "center_heatmap", "offsets"}
    assert all(v.dtype == torch.float32 and v.shape[-2:] == (128, 128) for v in preds.values())
    staged = program.decode(preds)
    whole = program(image)
    assert all(torch.equal(staged[k], whole[k]) for k in whole)


def test_metadata(exported, checkpoint):
    meta = read_metadata(exported)
    generated = (ROOT / "generated" / "panoptic" / "synthetic.py").read_text().splitlines()[0]
    assert meta["format"] == "omgen-deployment/1"
    assert (meta["om"], meta["spec"], meta["variant"]) == ("panoptic", "specs/panoptic.yaml", "synthetic")
    assert f"(sha256 {meta['om_hash']})" in generated
    assert meta["class_names"] == ["sky", "ellipse", "wall", "rectangle", "ground", "triangle"]
    assert meta["thing_ids"] == [1, 3, 5] and meta["num_classes"] == 6
    assert meta["label_divisor"] == 1000 and meta["void_id"] == 255000
    assert meta["om_config"]["sigma"] == 4.0  # the run's OM config override is what was exported
    assert meta["input"]["dtype"] == "uint8" and meta["input"]["size_policy"] == "pad"
    assert meta["input"]["size_divisor"] == 32
    assert meta["input"]["normalize"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["network_to_om"] == {"semantic_logits": "semantic_logits", "center_heatmap": "center_logits",
                                     "offsets": "offset_logits"}
    assert meta["checkpoint"]["step"] == 7
    files = {"spec.yaml": ""}
    torch.jit.load(str(exported), _extra_files=files)
    assert files["spec.yaml"].decode() == (ROOT / "specs" / "panoptic.yaml").read_text()


def test_wrapper_is_hand_written_not_generated(exported):
    """The program's top module is DeployedProgram from train/deploy.py, calling infer.forward_dict."""
    program = torch.jit.load(str(exported))
    assert program.original_name == "DeployedProgram"
    assert "forward_dict" in program.decode.code
    assert program.input_map == {"semantic_logits": "semantic_logits", "center_heatmap": "center_logits",
                                 "offsets": "offset_logits"}


# ------------------------------------------------------------------------------------ fresh process
FRESH = textwrap.dedent("""
    import json, sys
    sys.path.append({site!r})
    for name in ("omgen", "train", "runtime", "generated"):
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit("the project is importable: " + name)
    import torch
    torch.set_num_threads({threads})  # as the test process: bit-equal outputs need the same reduction order
    files = {{"meta.json": ""}}
    program = torch.jit.load({model!r}, _extra_files=files)
    meta = json.loads(files["meta.json"])
    images = torch.load({inputs!r})
    outputs = [program(image) for image in images]
    try:
        program(images[0].float())
        raise SystemExit("a float image was accepted")
    except Exception as exc:
        error = str(exc).strip().splitlines()[-1]
    torch.save({{"outputs": outputs, "variant": meta["variant"], "error": error,
                "sys_path": sys.path}}, {result!r})
""")


def test_runs_in_a_fresh_process_without_the_project(exported, loaded, tmp_path):
    site = str(Path(torch.__file__).resolve().parents[1])
    assert Path(site) not in ROOT.resolve().parents
    images = [torch.stack([synthetic_image(3), synthetic_image(4)]), synthetic_image(5, (90, 70))[None]]
    torch.save(images, tmp_path / "inputs.pt")
    code = FRESH.format(site=site, model=str(exported), inputs=str(tmp_path / "inputs.pt"),
                        result=str(tmp_path / "result.pt"), threads=torch.get_num_threads())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    # -I: no PYTHONPATH, no cwd on sys.path; -S: no site (.pth files: the editable install's finder)
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = torch.load(tmp_path / "result.pt")
    # the project is not importable from the child (a .venv inside the checkout may well be on its path)
    assert not any((Path(p) / "train" / "deploy.py").exists() or (Path(p) / "omgen").is_dir()
                   for p in result["sys_path"] if p)
    assert result["variant"] == "synthetic"
    assert result["error"].startswith("builtins.ValueError: image: expected dtype uint8")
    for image, got in zip(images, result["outputs"]):
        assert_same(got, eager_reference(loaded, image))


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("image, message", [
    (torch.zeros(3, 64, 64, dtype=torch.uint8), "image: expected a uint8 batch [N, 3, H, W], got rank 3 shape [3, 64, 64]"),
    (torch.zeros(1, 1, 3, 64, 64, dtype=torch.uint8), "got rank 5"),
    (torch.zeros(1, 3, 64, 64), "image: expected dtype uint8 (0..255 RGB), got float32 shape [1, 3, 64, 64]"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.int64), "got int64"),
    (torch.zeros(1, 4, 64, 64, dtype=torch.uint8), "image: expected 3 channels (RGB, [N, 3, H, W]), got 4"),
    (torch.zeros(1, 64, 64, 3, dtype=torch.uint8), "got 64 in shape [1, 64, 64, 3] (channels-last images need"),
    (torch.zeros(0, 3, 64, 64, dtype=torch.uint8), "image: empty batch or image, shape [0, 3, 64, 64]"),
])
def test_bad_images_raise_one_line_value_error(exported, image, message):
    program = torch.jit.load(str(exported))
    with pytest.raises(Exception) as info:
        program(image)
    last = str(info.value).strip().splitlines()[-1]
    assert last.startswith("builtins.ValueError: image: ")
    assert message in last
    # the check runs before the network: no frame of it in the trace
    assert "conv2d" not in str(info.value) and "_check_input" not in str(info.value)


def test_the_pixel_limit_is_checked_before_any_allocation(loaded, tmp_path):
    program = torch.jit.script(build_deployment(loaded, max_pixels=64 * 64))
    program(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))  # at the limit: fine
    huge = torch.zeros(1, 3, 1, 1, dtype=torch.uint8).expand(4, 3, 100_000, 100_000)  # a view: no memory
    for image, pixels in ((torch.zeros(1, 3, 64, 96, dtype=torch.uint8), 6144), (huge, 4 * 10 ** 10)):
        with pytest.raises(Exception) as info:
            program(image)
        last = str(info.value).strip().splitlines()[-1]
        assert last.startswith(f"builtins.ValueError: image: {pixels} pixels") and "limit of 4096" in last
    with pytest.raises(ValueError, match="max_pixels must be positive"):
        build_deployment(loaded, max_pixels=0)


def test_cli_records_max_pixels_and_refuses_a_limit_too_small_for_pt2(checkpoint, tmp_path, capsys):
    out = tmp_path / "m.ts"
    assert main(["export", str(checkpoint), "-o", str(out), "--max-pixels", "5000", "--format", "pt2"]) == 1
    assert "pt2 and aoti need a limit of at least that" in capsys.readouterr().err
    assert not out.with_suffix(".pt2").exists()
    # TorchScript only: both kinds write their metadata by one function (tests/deploy/test_artifacts.py reads
    # the pt2's), and a dynamic torch.export costs ~20 s
    assert main(["export", str(checkpoint), "-o", str(out), "--max-pixels", "50000", "--format", "ts"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["input"]["max_pixels"] == 50000 and meta["artifact"]["kind"] == "ts"
    with pytest.raises(Exception, match="50000"):
        torch.jit.load(str(out))(torch.zeros(1, 3, 256, 256, dtype=torch.uint8))
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(checkpoint), "-o", str(out), "--format", "ts,onnx2"])
    assert exit_info.value.code == 2
    assert "unknown 'onnx2' (expected a comma list of ts, pt2, aoti)" in capsys.readouterr().err


def test_bad_images_raise_value_error_in_eager_wrapper(loaded):
    with pytest.raises(ValueError, match=r"^image: expected 3 channels"):
        build_deployment(loaded)(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))


def test_strict_size_policy(loaded):
    program = torch.jit.script(build_deployment(loaded, size_policy="strict"))
    assert program(synthetic_image(0)[None])["panoptic"].shape == (1, 1, 128, 128)
    with pytest.raises(Exception, match=r"builtins.ValueError: image: height and width must be multiples of 32, "
                                        r"got shape \[1, 3, 100, 120\]"):
        program(synthetic_image(0, (100, 120))[None])
    with pytest.raises(ValueError, match="size_policy"):
        build_deployment(loaded, size_policy="resize")


# ------------------------------------------------------------------------------------ refused checkpoints
def test_refuses_another_variant(checkpoint, tmp_path):
    with pytest.raises(ValueError) as info:
        export_deployment(checkpoint, tmp_path / "x.ts", variant="base")
    message = str(info.value)
    assert "variant 'synthetic'" in message and "variant 'base'" in message and "specs/panoptic.yaml" in message
    assert not (tmp_path / "x.ts").exists()


def test_refuses_another_spec(checkpoint, tmp_path):
    with pytest.raises(ValueError) as info:
        export_deployment(checkpoint, tmp_path / "x.ts", spec="specs/examples/toy_peaks.yaml")
    assert "specs/panoptic.yaml variant 'synthetic'" in str(info.value)
    assert "specs/examples/toy_peaks.yaml" in str(info.value)


def test_checkpoint_of_another_spec_is_refused(tmp_path):
    """A checkpoint recording another variant than the one asked for, or another spec hash."""
    cfg = tiny_config(tmp_path)
    cfg["om"]["variant"] = "coco"
    ckpt = write_checkpoint(tmp_path / "coco.pt", cfg)
    with pytest.raises(ValueError, match=r"variant 'coco'.*variant 'synthetic'"):
        export_deployment(ckpt, tmp_path / "x.ts", variant="synthetic")
    stale = write_checkpoint(tmp_path / "stale.pt", tiny_config(tmp_path),
                             extra={"om": {"spec": "specs/panoptic.yaml", "variant": "synthetic", "hash": "0123abcd"}})
    with pytest.raises(ValueError) as info:
        export_deployment(stale, tmp_path / "x.ts")
    assert "spec hash 0123abcd" in str(info.value) and "--allow-om-change" in str(info.value)
    current = read_metadata_hash()
    assert f"spec hash {current}" in str(info.value)
    path = export_deployment(stale, tmp_path / "x.ts", allow_om_change=True)
    assert read_metadata(path)["om_hash"] == current


def read_metadata_hash() -> str:
    import generated.panoptic.synthetic as mod
    from train.deploy import om_hash

    return om_hash(mod)


def test_refuses_a_file_that_is_not_a_training_checkpoint(tmp_path):
    torch.save({"model": {}}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="records no run config with om.variant"):
        export_deployment(tmp_path / "bare.pt", tmp_path / "x.ts")
    with pytest.raises(FileNotFoundError):
        export_deployment(tmp_path / "missing.pt", tmp_path / "x.ts")


# ------------------------------------------------------------------------------------ command line
def test_cli_export_and_info(checkpoint, tmp_path, capsys):
    out = tmp_path / "cli" / "model.ts"
    assert main(["export", str(checkpoint), "-o", str(out)]) == 0
    assert "variant 'synthetic'" in capsys.readouterr().out
    assert torch.jit.load(str(out))(synthetic_image(0)[None])["panoptic"].shape == (1, 1, 128, 128)
    assert main(["info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["variant"] == "synthetic"
    assert main(["export", str(checkpoint), "-o", str(out), "--variant", "coco"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "'coco'" in err and "'synthetic'" in err


def test_cli_onnx_without_the_package(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    out = tmp_path / "model.ts"
    assert main(["export", str(checkpoint), "-o", str(out), "--onnx"]) == 0
    assert "skipped ONNX: the onnx package is not installed" in capsys.readouterr().err
    assert out.exists() and not (tmp_path / "model.network.onnx").exists()


def test_cli_module_entry(checkpoint, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "train.deploy", "export", str(checkpoint), "-o",
                           str(tmp_path / "m.ts"), "--variant", "base"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ") and "variant 'base'" in proc.stderr


# ------------------------------------------------------------------------------------ torch.export, ONNX
def test_onnx_network_only(loaded, tmp_path):
    pytest.importorskip("onnx")
    path = export_onnx(None, tmp_path / "net.onnx", size=(64, 64), loaded=loaded)
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["center_logits", "offset_logits", "semantic_logits"]


def test_onnx_skips_without_the_package(loaded, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    assert export_onnx(None, tmp_path / "net.onnx", loaded=loaded) is None
    assert not (tmp_path / "net.onnx").exists()

"""examples/cpp: build against the torch wheel's libtorch, run the exported program, compare with Python.

Skipped without CMake or a C++ compiler. The build (~1 min) happens once per
test session, in the session's pytest temporary folder.
"""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from deploy_helpers import read_id_ppm, synthetic_image, write_ppm

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cpp"

pytestmark = [
    pytest.mark.cpp,
    pytest.mark.xdist_group("compiled"),  # one worker builds the example and compiles the AOTInductor package
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.skipif(shutil.which("cmake") is None, reason="CMake is not installed"),
    pytest.mark.skipif(not any(shutil.which(c) for c in ("c++", "g++", "clang++")), reason="no C++ compiler"),
]


@pytest.fixture(scope="session")
def cpp_binary(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("cpp-build")
    prefix = torch.utils.cmake_prefix_path
    steps = [
        ["cmake", "-S", str(EXAMPLE), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release"],
        ["cmake", "--build", str(build), "-j", "2"],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    binary = build / "omgen_deploy"
    assert binary.exists()
    return binary


def read_pgm8(path: Path) -> np.ndarray:
    data = path.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
    assert header is not None
    w, h = int(header.group(1)), int(header.group(2))
    return np.frombuffer(data[header.end():], dtype=np.uint8).reshape(h, w)


def test_cpp_example_matches_python(cpp_binary, exported, tmp_path):
    image = synthetic_image(6, (100, 120))  # not a multiple of 32: the program pads and crops
    ppm = write_ppm(tmp_path / "image.ppm", image)
    out, sem = tmp_path / "panoptic.ppm", tmp_path / "semantic.pgm"
    proc = subprocess.run([str(cpp_binary), str(exported), str(ppm), str(out), "--threads", str(torch.get_num_threads()),
                           "--semantic", str(sem)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"variant": "synthetic"' in proc.stderr  # metadata read from the file's extra files
    want = torch.jit.load(str(exported))(image[None])
    panoptic = want["panoptic"][0, 0].numpy()
    got = read_id_ppm(out)
    assert got.shape == (100, 120)
    np.testing.assert_array_equal(got, panoptic)
    np.testing.assert_array_equal(read_pgm8(sem), want["semantic"][0, 0].numpy().astype(np.uint8))
    assert f"{len(np.unique(panoptic))} panoptic ids, {int(want['center_valid'].sum())} centers" in proc.stdout
    assert len(np.unique(panoptic)) > 3

    # errors: one line on stderr, exit status 1; usage: 2
    (tmp_path / "gray.pgm").write_bytes(b"P5\n4 4\n255\n" + bytes(16))
    bad = subprocess.run([str(cpp_binary), str(exported), str(tmp_path / "gray.pgm"), str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'gray.pgm'}: not a binary PPM (P6)"
    assert subprocess.run([str(cpp_binary)], capture_output=True, timeout=60).returncode == 2


@pytest.mark.aoti
@pytest.mark.slow
def test_cpp_runs_the_aoti_package_of_panoptic_pixel_for_pixel(cpp_binary, aoti_package, tmp_path):
    package = aoti_package("panoptic", "synthetic")
    image = synthetic_image(7, (100, 120))
    ppm = write_ppm(tmp_path / "image.ppm", image)
    out = tmp_path / "panoptic.ppm"
    proc = subprocess.run([str(cpp_binary), str(package), str(ppm), str(out), "--threads",
                           str(torch.get_num_threads())], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(AOTInductor)" in proc.stdout and '"kind": "aoti"' in proc.stderr
    want = torch.jit.load(str(package.with_name("model.ts")))(image[None])["panoptic"][0, 0].numpy()
    np.testing.assert_array_equal(read_id_ppm(out), want)
    assert len(np.unique(want)) > 3


@pytest.mark.aoti
def test_cpp_runs_centernet_ts_and_aoti_box_for_box(cpp_binary, aoti_package, tmp_path):
    import json

    package = aoti_package("detection", "base", (96, 128))  # the one-size package (test_artifacts.AOTI_SIZE)
    script = package.with_name("model.ts")
    image = synthetic_image(8, (96, 128))
    ppm = write_ppm(tmp_path / "image.ppm", image)
    want = torch.jit.load(str(script))(image[None])
    for program, tolerance in ((script, 0.0), (package, 1e-4)):
        out = tmp_path / f"{program.name}.json"
        proc = subprocess.run([str(cpp_binary), str(program), str(ppm), str(out), "--threads",
                               str(torch.get_num_threads())], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "100 detections" in proc.stdout
        got = json.loads(out.read_text())
        assert list(got) == ["boxes", "scores", "classes"]
        for name in got:
            value = torch.tensor(got[name]["data"], dtype=want[name].dtype).reshape(got[name]["shape"])
            torch.testing.assert_close(value, want[name], atol=tolerance, rtol=0 if tolerance == 0 else 1e-4)
    # the pixel limit of the metadata, checked before the program runs: one line, exit status 1
    big = write_ppm(tmp_path / "big.ppm", torch.zeros(3, 2048, 2049, dtype=torch.uint8))
    bad = subprocess.run([str(cpp_binary), str(package), str(big), str(tmp_path / "x.json")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: image: 4196352 pixels (batch x height x width)")

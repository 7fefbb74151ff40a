"""train.model: Panoptic-DeepLab shapes, TorchScript, torch.export, torchvision checkpoints."""

import pytest
import torch

from train.model import (
    Normalize,
    PanopticDeepLab,
    build_panoptic_deeplab,
    panoptic_deeplab_small,
    small_config,
)

K = 7
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.* is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(output_stride: int, **kw) -> PanopticDeepLab:
    return panoptic_deeplab_small(K, output_stride, backbone_width=8, **kw).eval()


@pytest.mark.parametrize("output_stride", [16, 32])
def test_output_shapes(output_stride):
    m = tiny(output_stride)
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        feats = m.backbone(x)
        out = m(x)
    assert set(out) == {"semantic_logits", "center_logits", "offset_logits"}
    assert out["semantic_logits"].shape == (2, K, 96, 64)
    assert out["center_logits"].shape == (2, 1, 96, 64)
    assert out["offset_logits"].shape == (2, 2, 96, 64)
    assert feats["res2"].shape[-2:] == (24, 16)
    assert feats["res3"].shape[-2:] == (12, 8)
    assert feats["res4"].shape[-2:] == (6, 4)
    s = output_stride
    assert feats["res5"].shape[-2:] == (96 // s, 64 // s)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_batch_independence_and_train_mode():
    m = tiny(16)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        full = m(x)
        one = m(x[1:2])
    for k in full:
        torch.testing.assert_close(full[k][1:2], one[k], rtol=1e-4, atol=1e-5)
    m.train()
    out = m(torch.randn(1, 3, 64, 64))  # batch 1 trains (no BN on the pooled ASPP branch)
    loss = sum(v.pow(2).mean() for v in out.values())
    loss.backward()
    assert m.backbone.conv1.weight.grad is not None
    assert m.offset_head.predictor.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("output_stride", [16, 32])
def test_scripted_equals_eager(output_stride):
    m = tiny(output_stride, separable=(output_stride == 16))
    s = torch.jit.script(m)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        a, b = m(x), s(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    norm = torch.jit.script(Normalize())
    img = torch.randint(0, 256, (1, 3, 4, 4), dtype=torch.uint8)
    torch.testing.assert_close(norm(img), Normalize()(img))


def test_torch_export():
    m = tiny(16)
    x = torch.randn(1, 3, 64, 64)
    ep = torch.export.export(m, (x,))
    with torch.no_grad():
        ref = m(x)
        got = ep.module()(x)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6)
    ep_norm = torch.export.export(Normalize(), (torch.zeros(1, 3, 8, 8, dtype=torch.uint8),))
    img = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(ep_norm.module()(img), Normalize()(img))


def test_normalize():
    img = torch.tensor([0, 255, 128], dtype=torch.uint8).reshape(1, 3, 1, 1).expand(1, 3, 2, 2)
    mean, std = (0.5, 0.25, 0.1), (0.5, 0.2, 0.3)
    out = Normalize(mean, std)(img)
    assert out.dtype == torch.float32
    expect = torch.tensor([(0 - 0.5) / 0.5, (1 - 0.25) / 0.2, (128 / 255 - 0.1) / 0.3]).reshape(1, 3, 1, 1)
    torch.testing.assert_close(out, expect.expand(1, 3, 2, 2))


def test_offsets_in_input_pixels():
    # a constant raw offset of 1 decoder pixel (stride 4) reads as 4 input pixels
    m = tiny(32)
    with torch.no_grad():
        m.offset_head.predictor.weight.zero_()
        m.offset_head.predictor.bias.fill_(1.0)
        out = m(torch.randn(1, 3, 64, 64))
    torch.testing.assert_close(out["offset_logits"], torch.full((1, 2, 64, 64), 4.0))


# --------------------------------------------------------------------------- checkpoints


def torchvision_resnet_state_dict(depth: int, num_classes: int = 1000):
    """A torchvision ``resnet{depth}`` state_dict, names and shapes written out by hand."""
    g = torch.Generator().manual_seed(depth)
    sd = {}

    def conv(name, cout, cin, k):
        sd[name + ".weight"] = torch.randn(cout, cin, k, k, generator=g)

    def bn(name, c):
        sd[name + ".weight"] = torch.rand(c, generator=g) + 0.5
        sd[name + ".bias"] = torch.randn(c, generator=g)
        sd[name + ".running_mean"] = torch.randn(c, generator=g)
        sd[name + ".running_var"] = torch.rand(c, generator=g) + 0.5
        sd[name + ".num_batches_tracked"] = torch.tensor(123)

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    bottleneck = depth >= 50
    blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}[depth]
    exp = 4 if bottleneck else 1
    inplanes = 64
    for i, (n, planes) in enumerate(zip(blocks, [64, 128, 256, 512])):
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            if bottleneck:
                conv(p + ".conv1", planes, inplanes, 1)
                bn(p + ".bn1", planes)
                conv(p + ".conv2", planes, planes, 3)
                bn(p + ".bn2", planes)
                conv(p + ".conv3", planes * 4, planes, 1)
                bn(p + ".bn3", planes * 4)
            else:
                conv(p + ".conv1", planes, inplanes, 3)
                bn(p + ".bn1", planes)
                conv(p + ".conv2", planes, planes, 3)
                bn(p + ".bn2", planes)
            if j == 0 and (i > 0 or inplanes != planes * exp):
                conv(p + ".downsample.0", planes * exp, inplanes, 1)
                bn(p + ".downsample.1", planes * exp)
            inplanes = planes * exp
    sd["fc.weight"] = torch.randn(num_classes, 512 * exp, generator=g)
    sd["fc.bias"] = torch.randn(num_classes, generator=g)
    return sd


@pytest.mark.parametrize("backbone,depth", [("resnet18", 18), ("resnet50", 50)])
def test_load_torchvision_checkpoint(tmp_path, backbone, depth):
    sd = torchvision_resnet_state_dict(depth)
    path = tmp_path / f"{backbone}.pth"
    torch.save(sd, path)
    cfg = small_config(K, 16)
    m = build_panoptic_deeplab(cfg, backbone=backbone)
    skipped = m.load_backbone(str(path))
    assert skipped == ["fc.bias", "fc.weight"]
    own = m.backbone.state_dict()
    assert set(own) == set(sd) - {"fc.weight", "fc.bias"}
    for k, v in own.items():
        assert torch.equal(v, sd[k]), k
    # wrapped under "state_dict" with DataParallel's "module." prefix also loads
    m2 = build_panoptic_deeplab(cfg, backbone=backbone)
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, tmp_path / "wrapped.pth")
    m2.load_backbone(str(tmp_path / "wrapped.pth"))
    assert torch.equal(m2.backbone.layer4[1].bn2.running_var, sd["layer4.1.bn2.running_var"])


def test_load_mismatched_checkpoint_raises(tmp_path):
    sd = torchvision_resnet_state_dict(34)  # basic blocks, but 3-4-6-3: not a resnet18
    torch.save(sd, tmp_path / "r34.pth")
    m = build_panoptic_deeplab(small_config(K, 32))
    before = m.backbone.conv1.weight.clone()
    with pytest.raises(ValueError, match="unexpected"):
        m.load_backbone(str(tmp_path / "r34.pth"))
    assert torch.equal(m.backbone.conv1.weight, before)


def test_small_model_fits_one_batch():
    # a few SGD steps on one batch lower all three losses: every head is trainable
    m = panoptic_deeplab_small(3, 16, backbone_width=8).train()
    x = torch.randn(2, 3, 32, 32)
    sem = (torch.arange(32)[None, :, None] >= 16).long().expand(2, 32, 32)  # two halves
    center = torch.zeros(2, 1, 32, 32)
    center[:, :, 4:20, 4:20] = 1.0
    offset = torch.full((2, 2, 32, 32), 3.0)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)

    def losses():
        out = m(x)
        return (torch.nn.functional.cross_entropy(out["semantic_logits"], sem),
                (out["center_logits"] - center).pow(2).mean(),
                (out["offset_logits"] - offset).abs().mean())

    first = [v.item() for v in losses()]
    for _ in range(6):
        opt.zero_grad()
        sum(losses()).backward()
        opt.step()
    last = [v.item() for v in losses()]
    assert all(b < 0.9 * a for a, b in zip(first, last)), (first, last)

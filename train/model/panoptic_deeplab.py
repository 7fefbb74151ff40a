"""Panoptic-DeepLab (Cheng et al., CVPR 2020), written here.

* ``ResNet`` backbone (ResNet-18 / ResNet-50) whose parameter and buffer names
  follow torchvision's ``resnet`` state_dict (``conv1``, ``bn1``,
  ``layer1.0.conv1``, ..., ``layerX.0.downsample.0/1``), so a local
  torchvision-format checkpoint loads with ``model.load_backbone(path)``;
  nothing is downloaded. ``fc`` is not part of the backbone and is skipped.
* ``ASPP`` and two DeepLabV3+-style decoders (semantic, instance) with skip
  features from res3 (stride 8) and res2 (stride 4).
* Heads: semantic logits ``[N,K,H,W]``, center heat map logits ``[N,1,H,W]``,
  offsets ``[N,2,H,W]`` (dy, dx, in input pixels), upsampled to the input size.
* Output stride 16 (layer4 dilated) or 32.

``forward(images)`` takes normalised float images ``[N,3,H,W]`` and returns
``{"semantic_logits", "center_logits", "offset_logits"}``. ``Normalize`` turns
uint8 images into that input. Every module passes ``torch.jit.script`` and
``torch.export`` (static shapes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Normalize",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet50",
    "ASPP",
    "Decoder",
    "Head",
    "PanopticDeepLabConfig",
    "PanopticDeepLab",
    "build_panoptic_deeplab",
    "panoptic_deeplab_r50",
    "panoptic_deeplab_small",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """uint8 (or 0..255 float) images [N,3,H,W] -> (x / 255 - mean) / std, float32.

    ``mean`` and ``std`` are given in [0, 1] units (ImageNet defaults).
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        mean_t = torch.tensor([float(m) for m in mean]).reshape(1, -1, 1, 1)
        std_t = torch.tensor([float(s) for s in std]).reshape(1, -1, 1, 1)
        # x * scale + shift == (x / 255 - mean) / std
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("shift", -mean_t / std_t)

    def forward(self, images: Tensor) -> Tensor:
        return images.to(torch.float32) * self.scale + self.shift


# --------------------------------------------------------------------------- ResNet


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, dilation: int = 1, first_dilation: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride, first_dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride sits on the 3x3 conv."""

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, dilation: int = 1, first_dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride, first_dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet trunk returning ``{"res2", "res3", "res4", "res5"}`` (strides 4, 8, 16, 32).

    ``output_stride=16`` replaces the stride of layer4 by dilation 2 (as
    torchvision's ``replace_stride_with_dilation=[False, False, True]``).
    ``width`` scales every stage (64 = standard, loadable from torchvision).
    """

    def __init__(self, block: str, layers: Sequence[int], output_stride: int = 32, width: int = 64):
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")
        blk = BasicBlock if block == "basic" else Bottleneck
        self.block_type = block
        self.width = width
        self.output_stride = output_stride
        self.inplanes = width
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(blk, width, layers[0], 1, False)
        self.layer2 = self._make_layer(blk, width * 2, layers[1], 2, False)
        self.layer3 = self._make_layer(blk, width * 4, layers[2], 2, False)
        self.layer4 = self._make_layer(blk, width * 8, layers[3], 2, output_stride == 16)
        e = blk.expansion
        self.channels: Dict[str, int] = {
            "res2": width * e, "res3": width * 2 * e, "res4": width * 4 * e, "res5": width * 8 * e,
        }
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, blk, planes: int, blocks: int, stride: int, dilate: bool) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * blk.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * blk.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * blk.expansion),
            )
        layers = [blk(self.inplanes, planes, stride, downsample, self.dilation, previous_dilation)]
        self.inplanes = planes * blk.expansion
        for _ in range(1, blocks):
            layers.append(blk(self.inplanes, planes, 1, None, self.dilation, self.dilation))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        res2 = self.layer1(x)
        res3 = self.layer2(res2)
        res4 = self.layer3(res3)
        res5 = self.layer4(res4)
        return {"res2": res2, "res3": res3, "res4": res4, "res5": res5}

    # -- torchvision checkpoints -------------------------------------------------

    def load_torchvision_state_dict(self, state_dict: Dict[str, Tensor]) -> List[str]:
        """Load a torchvision ``resnet*`` state_dict; returns the skipped keys (``fc.*``).

        Raises ``ValueError`` naming missing, unexpected or mis-shaped keys.
        """
        sd = {}
        for key, value in state_dict.items():
            if key.startswith("module."):
                key = key[len("module."):]
            sd[key] = value
        skipped = sorted(k for k in sd if k.startswith("fc."))
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
        own = self.state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        wrong = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
        if missing or unexpected or wrong:
            raise ValueError(
                "checkpoint does not match the backbone: "
                f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}, "
                f"shape mismatch {[(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in wrong[:8]]}"
            )
        self.load_state_dict(sd, strict=True)
        return skipped


def resnet18(output_stride: int = 32, width: int = 64) -> ResNet:
    return ResNet("basic", (2, 2, 2, 2), output_stride, width)


def resnet50(output_stride: int = 32, width: int = 64) -> ResNet:
    return ResNet("bottleneck", (3, 4, 6, 3), output_stride, width)


_BACKBONES = {"resnet18": resnet18, "resnet50": resnet50}


# --------------------------------------------------------------------------- decoder


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 1, dilation: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class SeparableConv(nn.Sequential):
    """Depthwise kxk conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 5, dilation: int = 1):
        super().__init__(
            nn.Conv2d(cin, cin, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                      groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def _fuse_conv(cin: int, cout: int, kernel: int, separable: bool) -> nn.Module:
    return SeparableConv(cin, cout, kernel) if separable else ConvBNReLU(cin, cout, kernel)


def _resize(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=[like.shape[2], like.shape[3]], mode="bilinear",
                         align_corners=False)


class ASPPPooling(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        # no BatchNorm on a 1x1 map: it would fail at batch size 1 in training
        y = self.relu(self.conv(x.mean(dim=(2, 3), keepdim=True)))
        return y.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3, image pooling; project to ``cout``."""

    def __init__(self, cin: int, cout: int, dilations: Sequence[int] = (6, 12, 18),
                 dropout: float = 0.1, separable: bool = False):
        super().__init__()
        branches: List[nn.Module] = [ConvBNReLU(cin, cout, 1)]
        for d in dilations:
            if separable:
                branches.append(SeparableConv(cin, cout, 3, d))
            else:
                branches.append(ConvBNReLU(cin, cout, 3, d))
        branches.append(ASPPPooling(cin, cout))
        self.branches = nn.ModuleList(branches)
        self.project = ConvBNReLU(cout * len(branches), cout, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        outs: List[Tensor] = []
        for b in self.branches:
            outs.append(b(x))
        return self.dropout(self.project(torch.cat(outs, dim=1)))


class DecoderStage(nn.Module):
    """Upsample to the skip feature, project the skip, concatenate, fuse."""

    def __init__(self, cin: int, skip_in: int, skip_out: int, cout: int, kernel: int, separable: bool):
        super().__init__()
        self.project = ConvBNReLU(skip_in, skip_out, 1)
        self.fuse = _fuse_conv(cin + skip_out, cout, kernel, separable)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.fuse(torch.cat([_resize(x, skip), self.project(skip)], dim=1))


class Decoder(nn.Module):
    """DeepLabV3+ decoder: ASPP on ``res5``, then one stage per skip (``res3``, ``res2``)."""

    def __init__(self, in_channels: Dict[str, int], aspp_channels: int, dilations: Sequence[int],
                 skip_keys: Sequence[str], skip_channels: Sequence[int], channels: int,
                 kernel: int = 5, separable: bool = True, dropout: float = 0.1):
        super().__init__()
        self.aspp = ASPP(in_channels["res5"], aspp_channels, dilations, dropout)
        stages: List[nn.Module] = []
        cin = aspp_channels
        for key, sc in zip(skip_keys, skip_channels):
            stages.append(DecoderStage(cin, in_channels[key], sc, channels, kernel, separable))
            cin = channels
        self.stages = nn.ModuleList(stages)
        self.skip_keys: List[str] = list(skip_keys)
        self.out_channels = cin

    def forward(self, features: Dict[str, Tensor]) -> Tensor:
        x = self.aspp(features["res5"])
        for i, stage in enumerate(self.stages):
            x = stage(x, features[self.skip_keys[i]])
        return x


class Head(nn.Module):
    """kxk fuse conv then a 1x1 prediction conv (with bias)."""

    def __init__(self, cin: int, mid: int, cout: int, kernel: int = 5, separable: bool = True,
                 bias_init: float = 0.0):
        super().__init__()
        self.fuse = _fuse_conv(cin, mid, kernel, separable)
        self.predictor = nn.Conv2d(mid, cout, 1)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.constant_(self.predictor.bias, bias_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.predictor(self.fuse(x))


# --------------------------------------------------------------------------- network


@dataclass
class PanopticDeepLabConfig:
    num_classes: int = 19
    backbone: str = "resnet50"           # resnet18 | resnet50
    output_stride: int = 16              # 16 (layer4 dilated) | 32
    backbone_width: int = 64             # 64 = torchvision widths (checkpoint-compatible)
    aspp_dilations: Optional[Tuple[int, ...]] = None  # default (6,12,18) at OS16, (3,6,9) at OS32
    # semantic branch
    sem_aspp_channels: int = 256
    sem_skip_channels: Tuple[int, ...] = (64, 32)      # projections of res3, res2
    sem_decoder_channels: int = 256
    sem_head_channels: int = 256
    # instance branch
    ins_aspp_channels: int = 256
    ins_skip_channels: Tuple[int, ...] = (32, 16)
    ins_decoder_channels: int = 128
    ins_head_channels: int = 32
    skip_keys: Tuple[str, ...] = ("res3", "res2")
    kernel: int = 5
    separable: bool = True               # depthwise-separable decoder / head convs
    dropout: float = 0.1
    center_bias_init: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class PanopticDeepLab(nn.Module):
    """Backbone + semantic decoder/head + instance decoder/center and offset heads.

    ``forward(images)`` with normalised float images ``[N,3,H,W]`` (H, W
    multiples of 32 for exact alignment) returns logits at the input size:
    ``semantic_logits [N,K,H,W]``, ``center_logits [N,1,H,W]``,
    ``offset_logits [N,2,H,W]`` (dy, dx).
    """

    def __init__(self, cfg: Optional[PanopticDeepLabConfig] = None):
        super().__init__()
        cfg = cfg if cfg is not None else PanopticDeepLabConfig()
        if cfg.backbone not in _BACKBONES:
            raise ValueError(f"unknown backbone {cfg.backbone!r}; known: {sorted(_BACKBONES)}")
        if len(cfg.skip_keys) != len(cfg.sem_skip_channels) or len(cfg.skip_keys) != len(cfg.ins_skip_channels):
            raise ValueError("skip_keys, sem_skip_channels and ins_skip_channels must have the same length")
        self.cfg = cfg
        self.backbone = _BACKBONES[cfg.backbone](cfg.output_stride, cfg.backbone_width)
        ch = self.backbone.channels
        dil = cfg.aspp_dilations or ((6, 12, 18) if cfg.output_stride == 16 else (3, 6, 9))
        self.semantic_decoder = Decoder(ch, cfg.sem_aspp_channels, dil, cfg.skip_keys, cfg.sem_skip_channels,
                                        cfg.sem_decoder_channels, cfg.kernel, cfg.separable, cfg.dropout)
        self.instance_decoder = Decoder(ch, cfg.ins_aspp_channels, dil, cfg.skip_keys, cfg.ins_skip_channels,
                                        cfg.ins_decoder_channels, cfg.kernel, cfg.separable, cfg.dropout)
        sc, ic = self.semantic_decoder.out_channels, self.instance_decoder.out_channels
        self.semantic_head = Head(sc, cfg.sem_head_channels, cfg.num_classes, cfg.kernel, cfg.separable)
        self.center_head = Head(ic, cfg.ins_head_channels, 1, cfg.kernel, cfg.separable, cfg.center_bias_init)
        self.offset_head = Head(ic, cfg.ins_head_channels, 2, cfg.kernel, cfg.separable)

    def forward(self, images: Tensor) -> Dict[str, Tensor]:
        # shapes stay symbolic (no int()/float()/torch.tensor of sizes) so torch.export keeps H and W dynamic
        h, w = images.shape[2], images.shape[3]
        feats = self.backbone(images)
        sem = self.semantic_decoder(feats)
        ins = self.instance_decoder(feats)
        size = [h, w]
        semantic = F.interpolate(self.semantic_head(sem), size=size, mode="bilinear", align_corners=False)
        center = F.interpolate(self.center_head(ins), size=size, mode="bilinear", align_corners=False)
        offset = self.offset_head(ins)
        # offsets are regressed in pixels of the decoder map; rescale to input pixels
        scale_y, scale_x = h / offset.shape[2], w / offset.shape[3]
        offset = F.interpolate(offset, size=size, mode="bilinear", align_corners=False)
        offset = torch.cat([offset[:, :1] * scale_y, offset[:, 1:] * scale_x], dim=1)
        return {"semantic_logits": semantic, "center_logits": center, "offset_logits": offset}

    def load_backbone(self, path: str) -> List[str]:
        """Load a local torchvision-format ResNet checkpoint into the backbone.

        Accepts a bare state_dict or one wrapped under ``"state_dict"`` /
        ``"model"``; strips ``module.``; skips ``fc.*`` (returned).
        """
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
            obj = obj["model"]
        return self.backbone.load_torchvision_state_dict(obj)


def build_panoptic_deeplab(cfg: Optional[PanopticDeepLabConfig] = None, **overrides) -> PanopticDeepLab:
    cfg = cfg or PanopticDeepLabConfig()
    if overrides:
        cfg = PanopticDeepLabConfig(**{**cfg.to_dict(), **overrides})
    return PanopticDeepLab(cfg)


def panoptic_deeplab_r50(num_classes: int = 19, output_stride: int = 16, **overrides) -> PanopticDeepLab:
    """The published configuration (R50, OS16, ASPP 256, decoders 256 / 128)."""
    return build_panoptic_deeplab(PanopticDeepLabConfig(num_classes=num_classes, backbone="resnet50",
                                                        output_stride=output_stride), **overrides)


def small_config(num_classes: int = 19, output_stride: int = 16, backbone_width: int = 64) -> PanopticDeepLabConfig:
    """ResNet-18 with narrow decoders: trains at 128x128 on the CPU in minutes."""
    return PanopticDeepLabConfig(
        num_classes=num_classes, backbone="resnet18", output_stride=output_stride,
        backbone_width=backbone_width,
        sem_aspp_channels=64, sem_skip_channels=(32, 16), sem_decoder_channels=64, sem_head_channels=64,
        ins_aspp_channels=64, ins_skip_channels=(16, 8), ins_decoder_channels=32, ins_head_channels=32,
        aspp_dilations=(2, 4, 6) if output_stride == 16 else (1, 2, 3),
    )


def panoptic_deeplab_small(num_classes: int = 19, output_stride: int = 16, backbone_width: int = 64,
                           **overrides) -> PanopticDeepLab:
    return build_panoptic_deeplab(small_config(num_classes, output_stride, backbone_width), **overrides)

"""CenterNet (ctdet) network: ResNet trunk, a small upsampling neck to stride 4, three heads.

uint8 images [N, 3, H, W] (H, W multiples of 32) -> a dict whose keys are the
prediction inputs of the CenterNet OM (generated/centernet/*.py ``INPUTS``):

* ``heatmap`` [N, C, H/4, W/4]: center logits; the last bias starts at -2.19
  (sigmoid 0.1, as published) so the focal loss does not start swamped by
  background;
* ``size`` [N, 2, H/4, W/4]: box (height, width) in output cells;
* ``offset`` [N, 2, H/4, W/4]: sub-cell center offset (dy, dx); without
  ``offset_head`` (the published --not_reg_offset, OM variant no-offset) there
  is no such head and no such output, so DDP finds no unused parameters;
* ``class_size`` [N, C, 2, H/4, W/4]: with ``class_specific_size`` the size
  head has 2C channels viewed as [N, C, 2, ...] (``size`` is then their mean
  over classes); otherwise the one size map broadcast to every class (a view,
  no copy), so that every OM variant finds its inputs.

The neck is FPN-like: res5 (stride 32) is upsampled x2 three times, each time
added to a 1x1 lateral projection of res4 / res3 / res2 and fused by a 3x3
conv (the published ResNet CenterNet uses three deconvolutions without skips;
the skips help small objects after short training).
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .panoptic_deeplab import Normalize, resnet18, resnet50

__all__ = ["CenterNet", "build_centernet", "HEATMAP_BIAS"]

HEATMAP_BIAS = -2.19


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class UpStage(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.reduce = _conv_bn_relu(cin, cout, 1) if cin != cout else nn.Identity()
        self.lateral = nn.Conv2d(skip, cout, 1)
        self.fuse = _conv_bn_relu(cout, cout, 3)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.reduce(x)
        x = F.interpolate(x, size=[skip.shape[2], skip.shape[3]], mode="bilinear", align_corners=False)
        return self.fuse(x + self.lateral(skip))


class CenterNet(nn.Module):
    def __init__(self, num_classes: int, backbone: str = "resnet18", backbone_width: int = 64,
                 neck_channels: int = 64, head_channels: int = 64, class_specific_size: bool = False,
                 offset_head: bool = True) -> None:
        super().__init__()
        if backbone not in ("resnet18", "resnet50"):
            raise ValueError(f"backbone must be resnet18 or resnet50, got {backbone!r}")
        self.num_classes = int(num_classes)
        self.class_specific_size = bool(class_specific_size)
        self.regress_offset = bool(offset_head)
        self.normalize = Normalize()
        self.backbone = (resnet18 if backbone == "resnet18" else resnet50)(32, backbone_width)
        ch = self.backbone.channels
        self.up4 = UpStage(ch["res5"], ch["res4"], neck_channels)
        self.up3 = UpStage(neck_channels, ch["res3"], neck_channels)
        self.up2 = UpStage(neck_channels, ch["res2"], neck_channels)
        size_out = 2 * self.num_classes if self.class_specific_size else 2
        self.heatmap_head = self._head(neck_channels, head_channels, self.num_classes)
        self.size_head = self._head(neck_channels, head_channels, size_out)
        self.offset_head = self._head(neck_channels, head_channels, 2) if self.regress_offset else nn.Sequential()
        last = self.heatmap_head[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, HEATMAP_BIAS)
        for head in (self.size_head, self.offset_head) if self.regress_offset else (self.size_head,):
            conv = head[-1]
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            nn.init.zeros_(conv.bias)

    @staticmethod
    def _head(cin: int, mid: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1))

    def forward(self, image: Tensor) -> Dict[str, Tensor]:
        f = self.backbone(self.normalize(image))
        x = self.up4(f["res5"], f["res4"])
        x = self.up3(x, f["res3"])
        x = self.up2(x, f["res2"])
        heatmap = self.heatmap_head(x)
        wh = self.size_head(x)
        n, h, w = wh.shape[0], wh.shape[2], wh.shape[3]
        if self.class_specific_size:
            class_size = wh.view(n, self.num_classes, 2, h, w)
            size = class_size.mean(1)
        else:
            size = wh
            class_size = wh.unsqueeze(1).expand(n, self.num_classes, 2, h, w)
        out = {"heatmap": heatmap, "size": size, "class_size": class_size}
        if self.regress_offset:
            out["offset"] = self.offset_head(x)
        return out


def build_centernet(num_classes: int, **kwargs) -> CenterNet:
    return CenterNet(num_classes, **kwargs)

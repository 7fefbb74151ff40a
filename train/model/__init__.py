"""Networks trained by omgen's runtime."""

from .panoptic_deeplab import (  # noqa: F401
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalize,
    PanopticDeepLab,
    PanopticDeepLabConfig,
    ResNet,
    build_panoptic_deeplab,
    panoptic_deeplab_r50,
    panoptic_deeplab_small,
    resnet18,
    resnet50,
    small_config,
)

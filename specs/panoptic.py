"""specs/panoptic.yaml as ModulOM-style Python classes (docs/python-frontend.md): semantic_pred has modes (one
term each: ids, logprob, prob, slot) and the votes p + Phi(p) are one helper method.

Panoptic-DeepLab output mathematics (Cheng et al., CVPR 2020), after the ModulOM math sheet: task variables,
ground truth, decoding and losses, with oracle and learnable-centers mixins. Conventions (crowd, void, ids)
are in docs/panoptic.md. Every term works on a batch (N >= 1) without Python loops over instances, classes or
pixels.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from omgen import OutputMath
from omgen.markers import mixin, term

om = "panoptic_py"  # generated/panoptic_py: the YAML spec keeps generated/panoptic
include = ["common/peaks.yaml", "common/heatmaps.yaml", "common/regression.yaml"]  # shared with CenterNet

inputs = {
    "semantic_logits": {
        "shape": ["N", "num_classes", "H", "W"],
        "dtype": "float",
        "role": "prediction",
        "doc": "Raw semantic logits.",
    },
    "center_heatmap": {"shape": ["N", 1, "H", "W"], "dtype": "float", "role": "prediction", "doc": "Raw center heat map."},
    "offsets": {
        "shape": ["N", 2, "H", "W"],
        "dtype": "float",
        "role": "prediction",
        "doc": "Raw offsets (dy, dx) in pixels.",
    },
    "panoptic": {
        "shape": ["N", 1, "H", "W"],
        "dtype": "int",
        "role": "truth",
        "doc": "Ground-truth panoptic id map (class * label_divisor + instance).",
    },
    "semantic_target": {
        "shape": ["N", 1, "H", "W"],
        "dtype": "long",
        "role": "truth",
        "doc": "given-targets: semantic_truth from the targets entrypoint.",
    },
    "center_target": {"shape": ["N", 1, "H", "W"], "dtype": "float", "role": "truth", "doc": "given-targets: center_truth."},
    "offset_target": {"shape": ["N", 2, "H", "W"], "dtype": "float", "role": "truth", "doc": "given-targets: offset_truth."},
    "semantic_weight_target": {
        "shape": ["N", 1, "H", "W"],
        "dtype": "float",
        "role": "truth",
        "doc": "given-targets: semantic_weights.",
    },
    "center_weight_target": {"shape": ["N", 1, "H", "W"], "dtype": "float", "role": "truth", "doc": "given-targets: center_weights."},
    "offset_weight_target": {"shape": ["N", 1, "H", "W"], "dtype": "float", "role": "truth", "doc": "given-targets: offset_weights."},
}


def thing_table(thing_ids: List[int], num_classes: int, like: Tensor) -> Tensor:
    """thing(c) in class-slot space (on the device of like): entry c + 1 for class c, entries 0 and num_classes +
    1 (outside the classes) False.
    """
    wanted = torch.tensor(thing_ids, dtype=torch.long, device=like.device)
    wanted = wanted[(wanted >= 0) & (wanted < num_classes)] + 1
    return torch.zeros(num_classes + 2, dtype=torch.long, device=like.device).index_fill_(0, wanted, 1) > 0


def thing_lookup(ids: Tensor, thing_ids: List[int], num_classes: int) -> Tensor:
    """thing(c) for every element of a class-id tensor; ids outside [0, num_classes) are not things."""
    table = thing_table(thing_ids, num_classes, ids)
    return table[ids.clamp(-1, num_classes) + 1]


def nearest_center(vy: Tensor, vx: Tensor, cy: Tensor, cx: Tensor) -> Tensor:
    """For each vote (vy, vx) [P], the first column j minimising (vy - cy[j])^2 + (vx - cx[j])^2; cy, cx are [1,
    k] (shared) or [P, k] (per vote); +inf coordinates mark empty slots.
    """
    d = vy.unsqueeze(1) - cy
    d.mul_(d)
    dx = vx.unsqueeze(1) - cx
    d.add_(dx.mul_(dx))
    return torch.min(d, 1)[1]


def histogram(keys: Tensor, bins: int) -> Tensor:
    """Counts of keys already known to lie in [0, bins), static size. CPU: one scatter_add. CUDA: bincount
    (privatised counters); a scatter_add of millions of keys into a few bins serialises on atomics (10 ms at
    batch 8, 1024x2048, H100).
    """
    k = keys.reshape(-1)
    if k.is_cuda and dynamic_shapes_allowed():
        return torch.bincount(k, minlength=bins)[:bins]
    out = torch.zeros(bins, dtype=torch.long, device=keys.device)
    return out.scatter_add_(0, k, torch.ones(1, dtype=torch.long, device=keys.device).expand(k.shape[0]))


class Config(OutputMath):
    """Config values (constructor arguments of the generated modules)."""

    num_classes: int = 19
    """Number of semantic classes K (train ids 0..K-1)."""
    thing_ids: List[int] = [11, 12, 13, 14, 15, 16, 17, 18]
    """Train ids of the thing classes."""
    ignore_label: int = 255
    """Semantic label of void pixels (must be >= num_classes)."""
    label_divisor: int = 1000
    """panoptic id = class * label_divisor + instance."""
    ignore_crowd_in_semantic: bool = False
    """Crowd pixels get the ignore label in the semantic target."""
    sigma: float = 8.0
    """Standard deviation of the center Gaussians (pixels)."""
    gaussian_radius: float = 3.0
    """Each Gaussian is rendered where |dy| and |dx| <= gaussian_radius * sigma (0 outside)."""
    small_instance_area: int = 4096
    """Instances with fewer pixels get small_instance_weight in the semantic loss."""
    small_instance_weight: float = 3.0
    """Semantic pixel weight of small instances."""
    top_k_percent_pixels: float = 0.2
    """Hard pixel mining: fraction of the labelled pixels of the batch kept in the semantic loss."""
    semantic_loss_weight: float = 1.0
    """w_sem."""
    center_loss_weight: float = 200.0
    """w_cen."""
    offset_loss_weight: float = 0.01
    """w_off."""
    center_threshold: float = 0.1
    """Minimum center score of a predicted center."""
    nms_kernel: int = 7
    """Window of the max-filter non-maximum suppression (odd)."""
    top_k: int = 200
    """Number of center slots (the k of the top-k over the peaks)."""
    stuff_area: int = 2048
    """Stuff segments with fewer pixels (per image and class) become void."""
    wrong_centroid_weight: float = 1.0
    """lambda_wrc of learnable-centers."""


class PanopticVariables(Config):
    """Task variables read from the ground-truth panoptic map (green block of the math sheet)."""

    @term(shape=["N", 1, "H", "W"], math=r"\mathbf{ID}^*_{pan}(p)")
    def panoptic_truth(self):
        """Ground-truth panoptic ids as int64."""
        return self.panoptic.long()

    @term(shape=["N", 1, "H", "W"])
    def class_slot_truth(self):
        """floor(id / label_divisor) clamped to [-1, num_classes], plus 1: 0 for negative ids, c + 1 for class c,
        num_classes + 1 beyond the classes. Every per-class property is one lookup in a (num_classes + 2)
        table.
        """
        return torch.div(self.panoptic_truth(), self.label_divisor, rounding_mode="floor").clamp(-1, self.num_classes) + 1

    @term(shape=["N", 1, "H", "W"])
    def void_truth(self):
        """Void pixels: negative ids or a class outside [0, num_classes) (e.g. 255 * 1000 + anything)."""
        table = torch.zeros(self.num_classes + 2, dtype=torch.bool, device=self.panoptic_truth().device)
        table[0] = True
        table[self.num_classes + 1] = True
        return table[self.class_slot_truth()]

    @term(shape=["N", 1, "H", "W"], math=r"\lfloor \mathbf{ID}^*_{pan}(p) / 1000 \rfloor")
    def class_truth(self):
        """Class of every pixel, ignore_label on void."""
        table = torch.arange(-1, self.num_classes + 1, device=self.panoptic_truth().device)
        table[0] = self.ignore_label
        table[self.num_classes + 1] = self.ignore_label
        return table[self.class_slot_truth()]

    @term(shape=["N", 1, "H", "W"], math=r"\mathbb{T}^* := \{p \mid thing(\mathbf{ID}^*_{sem}(p))\}")
    def thing_mask_truth(self):
        """Pixels of a thing class (crowd included)."""
        return thing_table(self.thing_ids, self.num_classes, self.panoptic_truth())[self.class_slot_truth()]

    @term(shape=["N", 1, "H", "W"])
    def crowd_truth(self):
        """Crowd: thing-class pixels with instance 0 (id == class * label_divisor)."""
        return self.thing_mask_truth() & (torch.remainder(self.panoptic_truth(), self.label_divisor) == 0)

    @term(shape=["N", 1, "H", "W"], math=r"\mathbf{ID}^*_{sem}(p)")
    def semantic_truth(self):
        """Semantic target, ignore_label on void (and on crowd if ignore_crowd_in_semantic)."""
        if self.ignore_crowd_in_semantic:
            return self.class_truth().masked_fill(self.crowd_truth(), self.ignore_label)
        return self.class_truth()

    @term(shape=["N", 1, "H", "W"])
    def instance_mask_truth(self):
        """Pixels of thing instances (thing class, not crowd)."""
        return self.thing_mask_truth() & ~self.crowd_truth()

    @term(shape=["N", 1, "H", "W"], math=r"\mathbf{ID}^*_{ins}(p) := \mathbf{ID}^*_{pan}(p) \text{ if } p \in \mathbb{T}^* \setminus crowd, -1 \text{ otherwise}")
    def instance_truth(self):
        """Panoptic id on the pixels of thing instances, -1 elsewhere (crowd is not an instance)."""
        return torch.where(self.instance_mask_truth(), self.panoptic_truth(), -1)


class PanDLGroundtruth(PanopticVariables):
    """Ground-truth maps and weights (blue block of the math sheet). Instances are numbered 0..M-1 over the whole
    batch; per-instance work runs on the compacted instance pixels (one nonzero), per-pixel maps are table
    lookups and scatters.
    """

    def instance_table_truth(self) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(pixels [P]: flat index n*H*W + y*W + x of every instance pixel, their instance number [P], batch [M],
        panoptic id [M], area [M], index map [N,1,H,W]). Instances are numbered by (image, panoptic id) with
        one histogram over the static key range image * num_classes * label_divisor + id and a cumulative sum
        (a linear-time unique).
        """
        n = self.panoptic_truth().shape[0]
        hw = self.panoptic_truth().shape[2] * self.panoptic_truth().shape[3]
        span = self.num_classes * self.label_divisor
        sel = torch.nonzero(self.instance_mask_truth().reshape(-1)).view(-1)
        key = self.panoptic_truth().reshape(-1)[sel] + torch.div(sel, hw, rounding_mode="floor") * span
        counts = histogram(key, n * span)
        present = counts > 0
        keys = torch.nonzero(present).view(-1)
        number = (torch.cumsum(present.long(), 0) - 1)[key]
        index = torch.full([n * hw], -1, dtype=torch.long, device=sel.device)
        index[sel] = number
        return (sel, number, torch.div(keys, span, rounding_mode="floor"), torch.remainder(keys, span),
                counts[keys], index.view(self.panoptic_truth().shape))

    @term(shape=["P"])
    def instance_pixels_truth(self):
        """Flat index n*H*W + y*W + x of every instance pixel."""
        return self.instance_table_truth()[0]

    @term(shape=["P"])
    def instance_number_truth(self):
        """Instance number of every instance pixel (aligned with instance_pixels_truth)."""
        return self.instance_table_truth()[1]

    @term(shape=["N", 1, "H", "W"], math=r"\mathbb{M}^*_i := \{p \mid \mathbf{ID}^*_{ins}(p) = i\}")
    def instance_index_truth(self):
        """Instance number (0..M-1, over the batch) of every pixel, -1 off instances."""
        return self.instance_table_truth()[5]

    @term(shape=["M"])
    def instance_batch_truth(self):
        """Image of each instance (sorted)."""
        return self.instance_table_truth()[2]

    @term(shape=["M"], probe=True)
    def instance_ids_truth(self):
        """Panoptic id of each instance."""
        return self.instance_table_truth()[3]

    @term(shape=["M"])
    def instance_area_truth(self):
        """Pixel count of each instance."""
        return self.instance_table_truth()[4]

    @term(shape=["M", 2], math=r"c^*_i := \mathrm{mean}\, \mathbb{M}^*_i")
    def centroids_truth(self):
        """Mean pixel (y, x) of each instance; sums in float64, exact for any image size."""
        hw = self.panoptic_truth().shape[2] * self.panoptic_truth().shape[3]
        w = self.panoptic_truth().shape[3]
        m = self.instance_area_truth().shape[0]
        r = torch.remainder(self.instance_pixels_truth(), hw)
        y = torch.div(r, w, rounding_mode="floor")
        yx = torch.stack([y, r - y * w], 1).to(torch.float64)
        sums = torch.zeros(m, 2, dtype=torch.float64, device=r.device).index_add_(0, self.instance_number_truth(), yx)
        return (sums / self.instance_area_truth().to(torch.float64).view(m, 1)).to(torch.float32)

    @term(shape=["N", 2, "H", "W"], math=r"\Phi^*(p) := c^*_{\mathbf{ID}^*_{ins}(p)} - p")
    def offset_truth(self):
        """Centroid minus pixel (dy, dx) on instance pixels, 0 elsewhere (differentiable in the centroids)."""
        n = self.panoptic_truth().shape[0]
        h = self.panoptic_truth().shape[2]
        w = self.panoptic_truth().shape[3]
        hw = h * w
        sel = self.instance_pixels_truth()
        b = torch.div(sel, hw, rounding_mode="floor")
        r = sel - b * hw
        y = torch.div(r, w, rounding_mode="floor")
        c = self.centroids_truth()[self.instance_number_truth()]
        place = torch.cat([b * (2 * hw) + r, b * (2 * hw) + hw + r])
        value = torch.cat([c[:, 0] - y.to(c.dtype), c[:, 1] - (r - y * w).to(c.dtype)])
        out = torch.zeros(n * 2 * hw, dtype=c.dtype, device=sel.device)
        return out.index_put_((place,), value).view(n, 2, h, w)

    @term(shape=["N", 1, "H", "W"], math=r"\Gamma^*(p) := \max_i \exp(-\|p - c^*_i\|^2 / (2 \cdot 8^2))")
    def center_truth(self):
        """Max over instances of a Gaussian around each centroid, rendered in a window |dy|, |dx| <=
        gaussian_radius * sigma by the library's gaussian_heatmap (shared with CenterNet: one channel, constant
        sigma). Targets carry no gradient.
        """
        c = self.centroids_truth()
        m = c.shape[0]
        spread = torch.full([m], self.sigma, dtype=torch.float64, device=c.device)
        one_channel = torch.zeros_like(self.instance_batch_truth())
        every = torch.ones(m, dtype=torch.bool, device=c.device)
        pan = self.panoptic_truth()
        return gaussian_heatmap(self.instance_batch_truth(), c[:, 0], c[:, 1], spread, spread * self.gaussian_radius,
                                one_channel, every, pan.shape[0], 1, pan.shape[2], pan.shape[3])

    @term(shape=["N", 1, "H", "W"])
    def semantic_weights(self):
        """small_instance_weight on instances under small_instance_area pixels, 1 elsewhere, 0 where the semantic
        target is ignored.
        """
        weight = (self.semantic_truth() != self.ignore_label).to(torch.float32)
        small = self.instance_area_truth()[self.instance_number_truth()] < self.small_instance_area
        weight.view(-1)[self.instance_pixels_truth()[small]] = self.small_instance_weight
        return weight

    @term(shape=["N", 1, "H", "W"])
    def center_weights(self):
        """1 on labelled pixels, 0 on void and crowd."""
        return (~(self.void_truth() | self.crowd_truth())).to(torch.float32)

    @term(shape=["N", 1, "H", "W"])
    def offset_weights(self):
        """1 on instance pixels, 0 on stuff, crowd and void."""
        return self.instance_mask_truth().to(torch.float32)


class PanDLPrediction(Config):
    """Decoding of the raw activations (blue block of the math sheet)."""

    @term(shape=["N", 2, "H", "W"], math=r"\Phi(p) := \tilde\Phi(p)")
    def offset_pred(self):
        return self.offsets

    @term(shape=["N", 1, "H", "W"], math=r"\Gamma(p) := \tilde\Gamma(p)")
    def center_pred(self):
        return self.center_heatmap

    @term(math=r"\mathbf{ID}_{sem}(p) := \mathrm{argmax}_k S(p, k), \quad S(p, k) := \mathrm{softmax}(\tilde S(p, \cdot))(k)")
    def semantic_pred(self, mode: str = "ids") -> Tensor:
        """Semantic ids, first maximum, from the logits (softmax is monotonic). argmax over dim 1 is 10-180x
        slower on the CPU (pytorch#140000) and max(1) still ~10x amax(1); this reads the logits twice: m =
        amax(1), then the first k with logit >= m is K - amax_k((logit_k >= m) * (K - k)) in uint8, which
        parallelises. Identical to torch.max(x, 1)[1] (tested) except that a NaN pixel gets K (void). K > 255
        and non-CPU devices (where one max(1) pass over the logits is the cheaper) use max(1).

        Modes (ModulOM: one cached value per mode; omgen: one term per mode): "ids" [N, 1, H, W] (the
        term semantic_pred), "logprob" [N, K, H, W] log S (what the semantic loss reads;
        semantic_pred__logprob), "prob" [N, K, H, W] S (semantic_pred__prob), "slot" [N, 1, H, W] the ids
        clamped to [-1, num_classes], plus 1 (class-slot space, see class_slot_truth; semantic_pred__slot).
        """
        if mode == "logprob":
            return F.log_softmax(self.semantic_logits, 1)
        if mode == "prob":
            return self.semantic_pred("logprob").exp()
        if mode == "slot":
            return self.semantic_pred().clamp(-1, self.num_classes) + 1
        k = self.semantic_logits.shape[1]
        if k > 255 or self.semantic_logits.device.type != "cpu":
            return torch.max(self.semantic_logits, 1, keepdim=True)[1]
        top = self.semantic_logits.amax(1, keepdim=True)
        rank = torch.arange(k, 0, -1, dtype=torch.uint8, device=top.device).view(1, k, 1, 1)
        hit = (self.semantic_logits >= top) * rank
        return k - hit.amax(1, keepdim=True).long()

    def _votes(self, pixels: Tensor, offsets: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(image [P], vy [P], vx [P]): the vote p + Phi(p) of flat pixel indices n * H * W + y * W + x, for
        offsets [N, 2, H, W]. A helper (leading '_'): not memoised, each caller passes its own offsets.
        """
        h = offsets.shape[2]
        w = offsets.shape[3]
        hw = h * w
        b = torch.div(pixels, hw, rounding_mode="floor")
        r = pixels - b * hw
        y = torch.div(r, w, rounding_mode="floor")
        flat = offsets.reshape(-1)
        vy = y.to(offsets.dtype) + flat[b * (2 * hw) + r]
        vx = (r - y * w).to(offsets.dtype) + flat[b * (2 * hw) + hw + r]
        return b, vy, vx

    @term(shape=["N", 1, "H", "W"], math=r"\Gamma(p) > t \wedge \Gamma(p) = \max_{q \in 7\times 7(p)} \Gamma(q)")
    def center_peaks(self):
        """Local maxima above center_threshold (max-filter NMS)."""
        return (self.center_pred() > self.center_threshold) & (self.center_pred() == max_filter_same(self.center_pred(), self.nms_kernel))

    def center_topk(self) -> Tuple[Tensor, Tensor, Tensor]:
        """(centers [N,k,2] (y, x) float, scores [N,k], valid [N,k] bool) with k = min(top_k, H*W): the top-k
        peaks by score, valid ones first.
        """
        w = self.center_pred().shape[3]
        peaks = torch.where(self.center_peaks(), self.center_pred(), torch.full_like(self.center_pred(), float("-inf")))
        best = topk_flat(peaks, self.top_k)
        valid = best[0] > self.center_threshold
        where = best[1]
        ys = torch.div(where, w, rounding_mode="floor")
        # float32 coordinates at least (float16 is not exact beyond 2048)
        centers = torch.stack([ys, where - ys * w], 2).to(torch.float64 if self.center_pred().dtype == torch.float64 else torch.float32)
        return centers, torch.where(valid, best[0], torch.zeros_like(best[0])), valid

    @term(shape=["N", "k", 2], math=r"C := \{c_j\} = \{p \mid \Gamma(p) \text{ is a local maximum}\}")
    def centers_pred(self):
        """Center slots (y, x); only the valid ones are centers."""
        return self.center_topk()[0]

    @term(shape=["N", "k"])
    def center_scores(self):
        return self.center_topk()[1]

    @term(shape=["N", "k"])
    def center_valid(self):
        return self.center_topk()[2]

    @term(shape=["N", 1, "H", "W"])
    def thing_mask_pred(self):
        return thing_table(self.thing_ids, self.num_classes, self.semantic_pred("slot"))[self.semantic_pred("slot")]

    def instance_assignment(self) -> Tuple[Tensor, Tensor, Tensor]:
        """(pixels [P]: flat index n*H*W + y*W + x of every predicted thing pixel, image [P], slot [P] of the
        nearest valid center of the same image or -1). Only thing pixels and only the first max-valid-count
        slots (valid slots come first) are compared.
        """
        n = self.semantic_pred().shape[0]
        kv = self.centers_pred().shape[1]
        if dynamic_shapes_allowed():
            kv = min(max(int(self.center_valid().sum(1).max().item()), 1), kv)
        valid = self.center_valid()[:, :kv]
        far = torch.full_like(self.centers_pred()[:, :kv, 0], float("inf"))
        phi = self.offset_pred()
        if phi.dtype != torch.float64:
            phi = phi.float()  # votes in float32 at least (float16 is not exact beyond 2048)
        cy = torch.where(valid, self.centers_pred()[:, :kv, 0], far).to(phi.dtype)
        cx = torch.where(valid, self.centers_pred()[:, :kv, 1], far).to(phi.dtype)
        sel = torch.nonzero(self.thing_mask_pred().reshape(-1)).view(-1)
        b, vy, vx = self._votes(sel, phi)
        if n == 1:
            j = nearest_center(vy, vx, cy, cx)
        elif dynamic_shapes_allowed():
            # one image at a time (nonzero sorts the pixels by image): the [pixels, centers]
            # distances of the whole batch would not fit in the caches (batch 8 at 1024x2048:
            # 1.8M x 30), 2-10x slower in bench/bench_panoptic.py
            counts: List[int] = histogram(b, n).tolist()
            parts: List[Tensor] = []
            start = 0
            for i in range(n):
                stop = start + counts[i]
                parts.append(nearest_center(vy[start:stop], vx[start:stop], cy[i:i + 1], cx[i:i + 1]))
                start = stop
            j = torch.cat(parts)
        else:
            j = nearest_center(vy, vx, cy[b], cx[b])
        ok = valid.reshape(-1)[b * kv + j]
        return sel, b, torch.where(ok, j, torch.full_like(j, -1))

    @term(shape=["N", 1, "H", "W"], math=r"\mathbf{ID}_{ins}(p) := \mathrm{argmin}_j \|p + \Phi(p) - c_j\|^2 \text{ if } thing(\mathbf{ID}_{sem}(p)), -1 \text{ otherwise}")
    def instance_pred(self):
        """Slot of the nearest valid center of the same image for each predicted thing pixel (first slot on
        ties), -1 on stuff, void, and where the image has no center.
        """
        n = self.semantic_pred().shape[0]
        out = torch.full([n * self.semantic_pred().shape[2] * self.semantic_pred().shape[3]], -1, dtype=torch.long,
                         device=self.semantic_pred().device)
        out[self.instance_assignment()[0]] = self.instance_assignment()[2]
        return out.view(self.semantic_pred().shape)

    @term(shape=["N", "k"], math=r"K_j := \mathrm{argmax}_k |\{p \in \mathbb{M}_j \mid \mathbf{ID}_{sem}(p) = k\}|")
    def instance_classes_pred(self):
        """Majority class of each center's pixels (smallest class on ties), -1 for an empty slot; one scatter
        over (image, slot, class) of the thing pixels.
        """
        n = self.semantic_pred().shape[0]
        k = self.centers_pred().shape[1]
        sel, b, j = self.instance_assignment()
        cls = self.semantic_pred().reshape(-1)[sel]
        bins = n * k * self.num_classes
        key = torch.where(j >= 0, (b * k + j) * self.num_classes + cls, torch.full_like(j, bins))
        counts = histogram(key, bins + 1)[:bins].view(n, k, self.num_classes)
        best = torch.max(counts, 2)
        return torch.where(best[0] > 0, best[1], torch.full_like(best[1], -1))

    @term(shape=["N", 1, "H", "W"], math=r"\mathbf{ID}_{pan}(p) := \mathbf{ID}_{sem}(p) \text{ if stuff, } 1000 K_{\mathbf{ID}_{ins}(p)} + \mathbf{ID}_{ins}(p) + 1 \text{ otherwise}")
    def panoptic_pred(self):
        """Stuff pixels: class * label_divisor if the class covers at least stuff_area pixels of the image; thing
        pixels: class of their center * label_divisor + slot + 1; everything else ignore_label *
        label_divisor. One histogram of (image, class), one table lookup per pixel, then the thing pixels are
        written.
        """
        n = self.semantic_pred().shape[0]
        k = self.centers_pred().shape[1]
        if k >= self.label_divisor:
            raise ValueError("panoptic_pred: " + str(k) + " center slots do not fit under label_divisor = "
                             + str(self.label_divisor) + " (instance ids are slot + 1); lower top_k")
        slots = self.num_classes + 2
        key = self.semantic_pred("slot")
        if n > 1:
            key = key + torch.arange(n, device=key.device).view(n, 1, 1, 1) * slots
        area = histogram(key, n * slots).view(n, slots)
        cls = torch.arange(-1, self.num_classes + 1, device=key.device).view(1, slots)
        stuff = (cls >= 0) & (cls < self.num_classes) & ~thing_lookup(cls, self.thing_ids, self.num_classes)
        void = torch.full_like(area, self.ignore_label * self.label_divisor)
        table = torch.where(stuff & (area >= self.stuff_area), cls * self.label_divisor, void)
        out = table.view(-1)[key]
        sel, b, j = self.instance_assignment()
        ok = j >= 0
        ins = torch.where(ok, j, torch.zeros_like(j))
        value = self.instance_classes_pred().reshape(-1)[b * k + ins] * self.label_divisor + ins + 1
        out.view(-1)[sel[ok]] = value[ok]
        return out


class PanDLLosses(PanDLGroundtruth, PanDLPrediction):
    """Losses (blue block of the math sheet)."""

    @term(shape=[], math=r"L_{sem} := \mathrm{mean}_{top\,20\%}\; w(p)\, CE(S(p, \cdot), \mathbf{ID}^*_{sem}(p))")
    def semantic_loss(self) -> Tensor:
        """Weighted cross-entropy, hard pixel mining: mean of the largest int(top_k_percent_pixels * V) weighted
        pixel losses of the batch, V the number of non-ignored pixels; 0 when nothing is labelled. Eager and
        TorchScript take a top-k of that size; while torch.export traces, a full descending sort masked to its
        first k (static shapes, the same value up to the order of the sum).
        """
        pixel = F.nll_loss(self.semantic_pred("logprob"), self.semantic_truth()[:, 0], ignore_index=self.ignore_label, reduction="none")
        pixel = (pixel * self.semantic_weights()[:, 0]).reshape(-1)
        labelled = (self.semantic_truth() != self.ignore_label).sum()
        if dynamic_shapes_allowed():
            k = int(self.top_k_percent_pixels * int(labelled.item()))
            if k <= 0:
                return pixel.sum() * 0.0
            return torch.topk(pixel, k)[0].mean()
        kept = torch.floor(labelled.to(torch.float64) * self.top_k_percent_pixels)
        first = torch.arange(pixel.shape[0], device=pixel.device) < kept
        hardest = torch.sort(pixel, descending=True)[0]
        return torch.where(first, hardest, torch.zeros_like(hardest)).sum() / kept.clamp(min=1.0).to(pixel.dtype)

    @term(shape=[], math=r"L_{cen} := \mathrm{mean}_p\, MSE(\Gamma(p), \Gamma^*(p))")
    def center_loss(self):
        """Squared error averaged over the center weights."""
        err = (self.center_pred() - self.center_truth()) ** 2 * self.center_weights()
        return err.sum() / self.center_weights().sum().clamp(min=1e-12)

    @term(shape=[], math=r"L_{off} := \mathrm{mean}_{p \in \mathbb{T}^*} L1(\Phi(p), \Phi^*(p))")
    def offset_loss(self):
        """|dy| + |dx| averaged over the offset weights (the library's weighted_l1_sum; the reference divides by the
        weight sum, not by 2x it).
        """
        weights = self.offset_weights()
        return weighted_l1_sum(self.offset_pred(), self.offset_truth(), weights) / weights.sum().clamp(min=1e-12)

    @term(shape=[], math="L := w_{sem} L_{sem} + w_{cen} L_{cen} + w_{off} L_{off}")
    def loss(self):
        return self.semantic_loss_weight * self.semantic_loss() + self.center_loss_weight * self.center_loss() + self.offset_loss_weight * self.offset_loss()


compose = [PanDLLosses]


@mixin("oracle-semantics")
class OracleSemantics(Config):
    """Ground truth replaces the semantic prediction. Crowd and void pixels are predicted void (ignore_label): a
    crowd region has no instance decomposition to recover, and PQ ignores predictions there.
    """

    def semantic_pred(self, mode: str = "ids") -> Tensor:
        """ids: the semantic target, void on crowd; logprob: log of the one-hot ground truth (0 / -inf; all -inf on
        ignored pixels); prob and slot follow from these (super()).
        """
        if mode == "ids":
            return torch.where(self.crowd_truth(), torch.full_like(self.semantic_truth(), self.ignore_label), self.semantic_truth())
        if mode != "logprob":
            return super().semantic_pred(mode)
        k = torch.arange(self.num_classes, device=self.semantic_truth().device).view(1, self.num_classes, 1, 1)
        hit = self.semantic_truth() == k
        return torch.where(hit, torch.zeros(hit.shape, device=hit.device),
                           torch.full(hit.shape, float("-inf"), device=hit.device))


@mixin("oracle-centers")
class OracleCenters(Config):
    """Ground truth replaces the predicted centers: the heat map by the center target, the center slots by the
    exact centroids of each image (as many slots as the largest instance count of the batch, at least 1, not
    capped at top_k), score 1.
    """

    def center_pred(self):
        return self.center_truth()

    def center_topk(self):
        n = self.panoptic_truth().shape[0]
        m = self.centroids_truth().shape[0]
        counts = histogram(self.instance_batch_truth(), n)
        k = max(int(counts.max().item()), 1)
        first = torch.cumsum(counts, 0) - counts
        slot = torch.arange(m, device=counts.device) - first[self.instance_batch_truth()]
        centers = torch.zeros(n * k, 2, dtype=self.centroids_truth().dtype, device=counts.device)
        valid = torch.zeros(n * k, dtype=torch.bool, device=counts.device)
        place = self.instance_batch_truth() * k + slot
        centers[place] = self.centroids_truth().detach()
        valid[place] = True
        return centers.view(n, k, 2), valid.view(n, k).to(centers.dtype), valid.view(n, k)


@mixin("oracle-offsets")
class OracleOffsets(Config):
    """Ground truth replaces the predicted offsets."""

    def offset_pred(self):
        return self.offset_truth()


@mixin("learnable-centers")
class LearnableCenters(Config):
    """ModulOM's learnable centers: instance centroids are the mean vote p + Phi(p) of their pixels (so the
    offset loss reaches the offsets through the centroids), and the offset loss also penalises votes closer to
    another instance's centroid.
    """

    @term(math=r"c^*_i := \mathrm{mean}_{p \in \mathbb{M}^*_i}\, p + \Phi(p)")
    def centroids_truth(self):
        m = self.instance_area_truth().shape[0]
        idx = self.instance_index_truth().reshape(-1)
        sel = torch.nonzero(idx >= 0).view(-1)
        b, vy, vx = self._votes(sel, self.offset_pred())
        sums = torch.zeros(m, 2, dtype=self.offset_pred().dtype, device=sel.device)
        sums = sums.index_add(0, idx[sel], torch.stack([vy, vx], 1))
        return sums / self.instance_area_truth().to(self.offset_pred().dtype).view(m, 1)

    @term(shape=["N", 1, "H", "W"], math=r"I^*(p) := \mathrm{argmin}_i \|p + \Phi(p) - c^*_i\|^2", new=True)
    def closest_truth_centroid(self):
        """Instance number of the centroid (same image) nearest to each instance pixel's vote, -1 off instances.
        """
        n = self.panoptic_truth().shape[0]
        h = self.panoptic_truth().shape[2]
        w = self.panoptic_truth().shape[3]
        hw = h * w
        m = self.instance_area_truth().shape[0]
        idx = self.instance_index_truth().reshape(-1)
        sel = torch.nonzero(idx >= 0).view(-1)
        counts = histogram(self.instance_batch_truth(), n)
        k = max(int(counts.max().item()), 1)
        first = torch.cumsum(counts, 0) - counts
        slot = torch.arange(m, device=sel.device) - first[self.instance_batch_truth()]
        table = torch.full([n * k, 2], float("inf"), dtype=self.offset_pred().dtype, device=sel.device)
        table[self.instance_batch_truth() * k + slot] = self.centroids_truth().detach()
        table = table.view(n, k, 2)
        b, vy, vx = self._votes(sel, self.offset_pred().detach())
        dy = vy.unsqueeze(1) - table[:, :, 0][b]
        dx = vx.unsqueeze(1) - table[:, :, 1][b]
        j = torch.min(dy * dy + dx * dx, 1)[1]
        out = torch.full([n * hw], -1, dtype=torch.long, device=sel.device)
        out[sel] = first[b] + j
        return out.view(n, 1, h, w)

    @term(math=r"L_{off} := \mathrm{mean}_{p \in \mathbb{T}^*} L1(p + \Phi(p), c^*_{\mathbf{ID}^*_{ins}(p)}) + \lambda_{wrc} (L1(p + \Phi(p), c^*_{\mathbf{ID}^*_{ins}(p)}) - L1(p + \Phi(p), c^*_{I^*(p)}))")
    def offset_loss(self):
        """Mean over instance pixels (offset weights) of the own-centroid L1 plus lambda_wrc times its excess
        over the closest-centroid L1.
        """
        idx = self.instance_index_truth().reshape(-1)
        sel = torch.nonzero(idx >= 0).view(-1)
        b, vy, vx = self._votes(sel, self.offset_pred())
        vote = torch.stack([vy, vx], 1)
        own = (vote - self.centroids_truth()[idx[sel]]).abs().sum(1)
        near = (vote - self.centroids_truth()[self.closest_truth_centroid().reshape(-1)[sel]]).abs().sum(1)
        per = (own + self.wrong_centroid_weight * (own - near)) * self.offset_weights().reshape(-1)[sel]
        return per.sum() / self.offset_weights().sum().clamp(min=1e-12)


@mixin("given-targets")
class GivenTargets(Config):
    """The loss reads targets computed elsewhere (the targets entrypoint in a data-loader worker) instead of
    deriving them from the panoptic map.
    """

    def semantic_truth(self):
        return self.semantic_target

    def center_truth(self):
        return self.center_target

    def offset_truth(self):
        return self.offset_target

    def semantic_weights(self):
        return self.semantic_weight_target

    def center_weights(self):
        return self.center_weight_target

    def offset_weights(self):
        return self.offset_weight_target


variants = {
    "base": [],
    "oracle-semantics": [OracleSemantics],
    "oracle-centers": [OracleCenters],
    "oracle-offsets": [OracleOffsets],
    "oracle-all": [OracleSemantics, OracleCenters, OracleOffsets],
    "learnable-centers": [LearnableCenters],
    "given-targets": [GivenTargets],
    "coco": {
        "mixins": [],
        "config": {
            "num_classes": 133,
            "thing_ids": [
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
                49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71,
                72, 73, 74, 75, 76, 77, 78, 79,
            ],
            "ignore_crowd_in_semantic": True,
            "stuff_area": 4096,
        },
        "doc": "COCO panoptic preset: 133 contiguous train ids, things 0..79, stuff 80..132.",
    },
    "synthetic": {
        "mixins": [],
        "config": {"num_classes": 6, "thing_ids": [1, 3, 5], "stuff_area": 64, "small_instance_area": 256},
        "doc": "Synthetic preset (train/data/synthetic.py): 6 classes (sky, ellipse, wall, rectangle, ground, triangle), things 1, 3, 5.",
    },
}

entrypoints = {
    "train": {
        "outputs": ["loss", "semantic_loss", "center_loss", "offset_loss"],
        "doc": "Total loss and each loss term.",
    },
    "infer": {
        "outputs": ["panoptic_pred", "semantic_pred", "instance_pred", "centers_pred", "center_scores", "center_valid"],
        "doc": "Decoding. centers_pred / center_scores / center_valid are fixed top-k slots with a validity mask.",
    },
    "targets": {
        "outputs": [
            "semantic_truth", "instance_truth", "instance_index_truth", "thing_mask_truth", "crowd_truth",
            "void_truth", "center_truth", "offset_truth", "semantic_weights", "center_weights",
            "offset_weights", "centroids_truth", "instance_batch_truth",
        ],
        "doc": "Every ground-truth map and weight, from the panoptic map alone (CPU data-loader worker or GPU).",
    },
}

"""learnable-centers: centroids are mean votes, the offset loss reaches the offsets through them."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

import panoptic_helpers as H
import panoptic_reference as ref


def reference_loss(offsets, pan, cfg, detach_centroids=False, closest=None):
    """Loop reference with torch scalars so autograd gives the reference gradient.

    closest: optional dict filled with pixel (n, y, x) -> (n, panoptic id) of the nearest centroid."""
    t = ref.targets(pan, cfg)
    n_img, _, h, w = pan.shape
    pixels = {}
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                pid = int(t["instance_truth"][n, 0, y, x])
                if pid >= 0:
                    pixels.setdefault((n, pid), []).append((y, x))
    vote = lambda n, y, x: torch.stack([y + offsets[n, 0, y, x], x + offsets[n, 1, y, x]])
    cents = {}
    for key in sorted(pixels):
        n = key[0]
        c = torch.stack([vote(n, y, x) for y, x in pixels[key]]).mean(0)
        cents[key] = c.detach() if detach_centroids else c
    total, count = 0.0, 0
    for key in sorted(pixels):
        n = key[0]
        for y, x in pixels[key]:
            v = vote(n, y, x)
            own = (v - cents[key]).abs().sum()
            best, best_d = None, None
            for other in sorted(pixels):
                if other[0] != n:
                    continue
                d = float(((v.detach() - cents[other].detach()) ** 2).sum())
                if best_d is None or d < best_d:
                    best, best_d = other, d
            near = (v - cents[best]).abs().sum()
            if closest is not None:
                closest[(n, y, x)] = best
            total = total + own + cfg["wrong_centroid_weight"] * (own - near)
            count += 1
    return total / count if count else offsets.sum() * 0.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(max_side=10, max_rects=6), seed=st.integers(0, 2 ** 31),
       lam=st.sampled_from([0.0, 1.0, 2.5]))
def test_learnable_offset_loss_value_and_gradient(pan, seed, lam):
    cfg = dict(H.CFG, wrong_centroid_weight=lam)
    logits, center, offsets = H.predictions(pan.shape, seed)
    offsets = offsets.double().requires_grad_()
    s = H.session("learnable_centers", wrong_centroid_weight=lam)
    s.bind(semantic_logits=logits, center_heatmap=center, offsets=offsets, panoptic=torch.from_numpy(pan))
    got = s.offset_loss()
    ref_off = offsets.detach().clone().requires_grad_()
    closest = {}
    want = reference_loss(ref_off, pan, cfg, closest=closest)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-9, atol=1e-12)
    if not got.requires_grad:
        return  # no instance pixel
    (g,) = torch.autograd.grad(got, offsets)
    (gw,) = torch.autograd.grad(want, ref_off)
    np.testing.assert_allclose(g.numpy(), gw.numpy(), atol=1e-12)
    # closest_truth_centroid vs the reference argmin (instance numbers -> (image, panoptic id))
    idx = s.instance_index_truth()
    got_closest = s.closest_truth_centroid()
    assert bool(((got_closest >= 0) == (idx >= 0)).all())
    ids, batch = s.instance_ids_truth().tolist(), s.instance_batch_truth().tolist()
    for (n, y, x), key in closest.items():
        j = int(got_closest[n, 0, y, x])
        assert (batch[j], ids[j]) == key


def test_gradient_reaches_offsets_through_centroids():
    pan = np.full((1, 1, 12, 12), 0, np.int64)
    pan[0, 0, 1:5, 1:6] = 11001
    pan[0, 0, 6:11, 3:9] = 12001
    g = torch.Generator().manual_seed(0)
    offsets = (torch.randn(1, 2, 12, 12, generator=g, dtype=torch.float64) * 3).requires_grad_()
    loss = H.entry("learnable_centers", "train")(torch.randn(1, 19, 12, 12), torch.rand(1, 1, 12, 12), offsets,
                                                 torch.from_numpy(pan))["offset_loss"]
    (grad,) = torch.autograd.grad(loss, offsets)
    full = offsets.detach().clone().requires_grad_()
    (want,) = torch.autograd.grad(reference_loss(full, pan, H.CFG), full)
    cut = offsets.detach().clone().requires_grad_()
    (detached,) = torch.autograd.grad(reference_loss(cut, pan, H.CFG, detach_centroids=True), cut)
    np.testing.assert_allclose(grad.numpy(), want.numpy(), atol=1e-12)
    assert float((grad - detached).abs().max()) > 1e-3  # the centroid path contributes
    # the base variant's offset loss does not depend on the other pixels' offsets
    base = H.entry("base", "train")(torch.randn(1, 19, 12, 12), torch.rand(1, 1, 12, 12), full,
                                    torch.from_numpy(pan))["offset_loss"]
    (gb,) = torch.autograd.grad(base, full)
    assert float((gb - grad).abs().max()) > 1e-3


def test_learnable_targets_follow_votes_without_gradient():
    pan = np.full((1, 1, 10, 10), 0, np.int64)
    pan[0, 0, 2:6, 2:6] = 11001
    offsets = torch.zeros(1, 2, 10, 10, requires_grad=True)
    with torch.no_grad():
        offsets[0, 0] += 1.0  # every vote one pixel lower
    out = H.entry("learnable_centers", "targets")(offsets, torch.from_numpy(pan))
    assert out["centroids_truth"].tolist() == [[4.5, 3.5]]
    assert not out["center_truth"].requires_grad
    # the Gaussian sits on the rounded vote centroid, half to even: (4.5, 3.5) -> (4, 4), the one maximum
    heat = out["center_truth"][0, 0]
    assert float(heat[4, 4]) == 1.0 and int((heat == heat.max()).sum()) == 1

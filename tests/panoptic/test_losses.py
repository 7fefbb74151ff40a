"""Losses (train entrypoint) against the loop reference."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

import panoptic_helpers as H
import panoptic_reference as ref


def check_losses(pan, seed, variant="base", **config):
    cfg = dict(H.CFG, **config)
    logits, center, offsets = H.predictions(pan.shape, seed)
    got = H.entry(variant, "train", **config)(logits, center, offsets, torch.from_numpy(pan))
    want = ref.losses(logits.double().numpy(), center.double().numpy(), offsets.double().numpy(), pan, cfg)
    for name, value in want.items():
        assert got[name].shape == ()
        np.testing.assert_allclose(float(got[name]), value, rtol=2e-5, atol=1e-6, err_msg=name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(), seed=st.integers(0, 2 ** 31))
def test_losses_match_reference(pan, seed):
    check_losses(pan, seed)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(max_n=1, max_side=10), seed=st.integers(0, 2 ** 31),
       pct=st.sampled_from([0.05, 0.5, 1.0]))
def test_losses_other_settings(pan, seed, pct):
    check_losses(pan, seed, top_k_percent_pixels=pct, small_instance_area=4, small_instance_weight=5.0,
                 center_loss_weight=3.0, offset_loss_weight=0.5, ignore_crowd_in_semantic=True)


def test_losses_all_void_are_zero_and_differentiable():
    pan = torch.full((2, 1, 6, 6), 255 * 1000, dtype=torch.long)
    logits, center, offsets = (t.requires_grad_() for t in H.predictions(pan.shape, 0))
    out = H.entry("base", "train")(logits, center, offsets, pan)
    for name in ["loss", "semantic_loss", "center_loss", "offset_loss"]:
        assert float(out[name]) == 0.0, name
    out["loss"].backward()
    assert float(logits.grad.abs().sum()) == 0.0


def test_losses_many_instances():
    pan = H.many_instances(230, side=48)
    check_losses(pan, 3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pan=H.panoptic_maps(), seed=st.integers(0, 2 ** 31))
def test_given_targets_train_equals_base(pan, seed):
    """Targets made by the targets entrypoint (a data-loader worker) give the same losses."""
    logits, center, offsets = H.predictions(pan.shape, seed)
    pan_t = torch.from_numpy(pan)
    targets = H.entry("base", "targets")(pan_t)
    given = {name: targets[key] for key, name in H.TARGET_INPUTS.items()}
    got = H.entry("given_targets", "train")(logits, center, offsets, **given)
    want = H.entry("base", "train")(logits, center, offsets, pan_t)
    for key in want:
        assert torch.equal(got[key], want[key]), key

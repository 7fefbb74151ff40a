"""The class slot, void, class, thing and crowd maps read through the real quotient (id + label_divisor + 1/2) /
label_divisor (class_quotient_truth: float32 while (num_classes + 2) * label_divisor < 2^22, float64 beyond) equal
their integer definitions (floor division and remainder) for any id, any label divisor and class count, on both
sides of the float32 bound, and still do when the quotient is off by a few units in the last place (a backend
whose arithmetic is not correctly rounded)."""
from __future__ import annotations

import torch
from hypothesis import example, given, settings, strategies as st

import generated.panoptic.base as om

IDS = st.lists(st.one_of(st.integers(-(2 ** 62), 2 ** 62), st.integers(-3000, 300_000)), min_size=1, max_size=64)


@settings(max_examples=60, deadline=None)
@given(ids=IDS, label_divisor=st.integers(1, 100_000), num_classes=st.integers(1, 255), data=st.data())
@example(ids=[-1, 0, 999, 1000, 18999, 19000, 255000, 11000, 11001, 2 ** 62], label_divisor=1000, num_classes=19,
         data=None)
# the last divisor under the float32 bound ((255 + 2) * 16320 < 2^22) and the first over it: ids one off multiples
@example(ids=[k * 16320 + d for k in (0, 1, 11, 12, 254, 255) for d in (-1, 0, 1, 16319)], label_divisor=16320,
         num_classes=255, data=None)
@example(ids=[k * 16321 + d for k in (0, 1, 11, 12, 254, 255) for d in (-1, 0, 1, 16320)], label_divisor=16321,
         num_classes=255, data=None)
def test_quotient_maps_equal_the_integer_definitions(ids, label_divisor, num_classes, data):
    things = [11, 12] if data is None else data.draw(st.lists(st.integers(0, num_classes - 1), max_size=5))
    pan = torch.tensor(ids, dtype=torch.long).view(1, 1, 1, -1)
    session = om.Session(num_classes=num_classes, thing_ids=things, label_divisor=label_divisor)
    session.bind(panoptic=pan)
    cls = torch.div(pan, label_divisor, rounding_mode="floor")
    slot = cls.clamp(-1, num_classes) + 1
    assert session.class_slot_truth().dtype == torch.int32
    assert torch.equal(session.class_slot_truth().long(), slot)
    wanted = torch.float32 if (num_classes + 2) * label_divisor < 2 ** 22 else torch.float64
    assert session.class_quotient_truth().dtype == wanted
    void = (pan < 0) | (cls >= num_classes)
    assert torch.equal(session.void_truth(), void)
    assert torch.equal(session.class_truth(), torch.where(void, torch.full_like(cls, 255), cls))
    thing = ~void & torch.isin(cls, torch.tensor(things, dtype=torch.long))
    assert torch.equal(session.thing_mask_truth(), thing)
    assert torch.equal(session.crowd_truth(), thing & (torch.remainder(pan, label_divisor) == 0))


@settings(max_examples=40, deadline=None)
@given(ids=IDS, config=st.sampled_from([(19, 1000), (133, 1000), (150, 1000), (65, 256)]), ulps=st.integers(-4, 4))
def test_slot_and_crowd_hold_with_the_quotient_a_few_ulps_off(ids, config, ulps):
    """The slot and crowd read the quotient with a margin of 1 / (2 label_divisor): a quotient off by up to 4
    units in the last place (a compiled backend's arithmetic) gives the same maps, for Cityscapes-, COCO- and
    ADE-sized configs."""
    num_classes, label_divisor = config
    pan = torch.tensor(ids, dtype=torch.long).view(1, 1, 1, -1)
    terms = om.Terms(num_classes=num_classes, thing_ids=list(range(num_classes)), label_divisor=label_divisor)
    quotient = terms.class_quotient_truth(pan)
    assert quotient.dtype == torch.float32
    toward = torch.full_like(quotient, float("inf") if ulps > 0 else 0.0)
    for _ in range(abs(ulps)):
        quotient = torch.nextafter(quotient, toward)
    cls = torch.div(pan, label_divisor, rounding_mode="floor")
    slot = terms.class_slot_truth(quotient)
    assert torch.equal(slot.long(), cls.clamp(-1, num_classes) + 1)
    thing = terms.thing_mask_truth(terms.class_flags_truth(pan, slot))
    crowd = terms.crowd_truth(thing, quotient)
    assert torch.equal(crowd, thing & (torch.remainder(pan, label_divisor) == 0))

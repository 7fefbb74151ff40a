"""The class slot, void, class, thing and crowd maps read through the real quotient 1 + id / label_divisor
(class_quotient_truth: float32 while (num_classes + 1) * label_divisor < 2^24, float64 beyond) equal their integer
definitions (floor division and remainder) for any id, any label divisor and class count, on both sides of the
float32 bound."""
from __future__ import annotations

import torch
from hypothesis import example, given, settings, strategies as st

import generated.panoptic.base as om

IDS = st.lists(st.one_of(st.integers(-(2 ** 62), 2 ** 62), st.integers(-3000, 300_000)), min_size=1, max_size=64)


@settings(max_examples=60, deadline=None)
@given(ids=IDS, label_divisor=st.integers(1, 100_000), num_classes=st.integers(1, 255), data=st.data())
@example(ids=[-1, 0, 999, 1000, 18999, 19000, 255000, 11000, 11001, 2 ** 62], label_divisor=1000, num_classes=19,
         data=None)
# the last divisor under the float32 bound ((255 + 1) * 65535 < 2^24) and the first over it: ids one off multiples
@example(ids=[k * 65535 + d for k in (0, 1, 11, 12, 254, 255) for d in (-1, 0, 1, 65534)], label_divisor=65535,
         num_classes=255, data=None)
@example(ids=[k * 65536 + d for k in (0, 1, 11, 12, 254, 255) for d in (-1, 0, 1, 65535)], label_divisor=65536,
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
    wanted = torch.float32 if (num_classes + 1) * label_divisor < 2 ** 24 else torch.float64
    assert session.class_quotient_truth().dtype == wanted
    void = (pan < 0) | (cls >= num_classes)
    assert torch.equal(session.void_truth(), void)
    assert torch.equal(session.class_truth(), torch.where(void, torch.full_like(cls, 255), cls))
    thing = ~void & torch.isin(cls, torch.tensor(things, dtype=torch.long))
    assert torch.equal(session.thing_mask_truth(), thing)
    assert torch.equal(session.crowd_truth(), thing & (torch.remainder(pan, label_divisor) == 0))

"""omgen's runtime: train, evaluate and export a network against any generated OM.

- ``runtime.om``: ``load_om(spec, variant)`` — compile when generated/ is stale, import, metadata
- ``runtime.model``: ``OMModel`` — network + OM entrypoints joined by name; ``TargetsCollate``
- ``runtime.trainer``: ``Trainer`` / ``TrainSettings`` — the loop (AMP, DDP, torch.compile,
  checkpoints, resume, deterministic seeding, non-finite-loss stop, time budget)
- ``runtime.distributed``, ``runtime.checkpoint``, ``runtime.metrics``, ``runtime.config``,
  ``runtime.export``; ``runtime.evaluation``: PQ, mIoU, mask AP
See docs/training.md. Submodules are imported on demand (importing ``runtime`` is cheap).
"""

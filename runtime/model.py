"""A network joined to the entrypoints of a generated OM, by name.

* the network returns a dict; the OM's prediction inputs (``INPUTS`` with
  ``role: prediction``) are read from it by name, or through ``outputs``
  (OM input name -> network output name) for the names that differ;
* truth inputs (``role: truth``) are read from the batch by name, or through
  ``truth`` (OM input name -> batch key);
* the ``targets`` entrypoint (when the OM has one) can run in the data-loader
  workers (``targets="loader"``: :class:`TargetsCollate`) or on the device
  (``targets="device"``); its outputs are then handed to the OM's Session as
  the values of those terms, and the ``train`` outputs are read from the
  Session. ``targets="inline"`` calls the ``train`` entrypoint, which derives
  the targets itself.
* size inputs (``type: Size``, e.g. the output grid ``[h, w]`` the targets
  are drawn on) are read off the network's outputs where their sizes are named
  in a prediction input's shape (the grid from the heat map ``[N, C, h, w]``);
  in the loader, where there is no network output yet, the collate puts them
  into the batch (a list of ints: ``batch["grid"] = [H // stride, W // stride]``).

Losses are computed in float32 whatever the network's autocast dtype.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from .om import OM

TARGET_MODES = ("inline", "device", "loader")
TARGETS_KEY = "targets"


class OMModel(nn.Module):
    def __init__(self, network: nn.Module, om: OM, *, config: Optional[Mapping[str, Any]] = None,
                 outputs: Optional[Mapping[str, str]] = None, truth: Optional[Mapping[str, str]] = None,
                 network_inputs: Sequence[str] = ("image",), targets: str = "inline",
                 loss_key: str = "loss") -> None:
        super().__init__()
        if targets not in TARGET_MODES:
            raise ValueError(f"targets must be one of {TARGET_MODES}, got {targets!r}")
        if targets != "inline" and not om.has("targets"):
            raise ValueError(f"OM {om.name}/{om.variant} has no 'targets' entrypoint; use targets: inline")
        self.network = network
        self.om = om
        self.om_config = dict(config or {})
        self.output_map = dict(outputs or {})
        self.truth_map = dict(truth or {})
        self.network_inputs = list(network_inputs)
        self.targets_mode = targets
        self.loss_key = loss_key
        unknown = sorted(set(self.output_map) - set(om.prediction_inputs)) + sorted(set(self.truth_map) - set(om.truth_inputs) - set(om.size_inputs))
        if unknown:
            raise ValueError(f"mapping names {unknown} are not prediction/truth/size inputs of OM {om.name}: {om.inputs}")
        self.train_entry = om.build("train", self.om_config) if om.has("train") else None
        self.infer_entry = om.build("infer", self.om_config) if om.has("infer") else None
        self.targets_entry = om.build("targets", self.om_config) if om.has("targets") else None
        self.train_outputs = om.outputs("train") if om.has("train") else []
        self.session = om.session(self.om_config)
        if loss_key not in self.train_outputs and self.train_outputs:
            raise ValueError(f"loss key {loss_key!r} is not an output of the train entrypoint: {self.train_outputs}")
        self.om_train_forward: Callable[..., Dict[str, Tensor]] = self.train_entry if self.train_entry is not None else None
        self._signatures = {ep: om.signature(ep) for ep in om.entrypoints}
        truth = set(om.truth_inputs)
        # the truth inputs each entrypoint takes (a spec may declare inputs only some variants use)
        self.train_truth = [n for n in om.signature("train") if n in truth] if om.has("train") else []
        self.targets_truth = [n for n in om.signature("targets") if n in truth] if om.has("targets") else []
        self.needed_predictions = {n for names in self._signatures.values() for n in names} & set(om.prediction_inputs)

    # -- name mapping -------------------------------------------------------------------------
    def network_args(self, batch: Mapping[str, Any]) -> List[Tensor]:
        return [batch[k] for k in self.network_inputs]

    def predictions(self, net_out: Mapping[str, Tensor], *, float32: bool = True) -> Dict[str, Tensor]:
        """Network outputs -> the OM's prediction inputs, by name (float32 unless told). Only those the
        variant's entrypoints take are required (a spec may declare inputs for some variants only)."""
        result = {}
        for name in self.om.prediction_inputs:
            key = self.output_map.get(name, name)
            if key not in net_out and name not in self.needed_predictions:
                continue
            if key not in net_out:
                raise KeyError(f"OM input {name!r} needs network output {key!r}; the network returned {sorted(net_out)} "
                               f"(map names with outputs: {{{name}: <network output>}})")
            value = net_out[key]
            result[name] = value.float() if float32 and value.is_floating_point() else value
        return result

    def truths(self, batch: Mapping[str, Any], names: Optional[Sequence[str]] = None,
               required: bool = True) -> Dict[str, Tensor]:
        """Truth inputs from the batch by name (default: those of the targets or train entrypoint)."""
        if names is None:
            names = self.targets_truth if self.targets_mode != "inline" else self.train_truth
        result = {}
        for name in names:
            key = self.truth_map.get(name, name)
            if key not in batch:
                if not required:
                    continue
                raise KeyError(f"OM input {name!r} needs batch key {key!r}; the batch has {sorted(batch)}")
            result[name] = batch[key]
        return result

    # -- OM entrypoints -----------------------------------------------------------------------
    def compute_targets(self, truths: Mapping[str, Tensor],
                        predictions: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
        """The targets entrypoint on truth inputs and the predictions it takes, if any (a heat map read for
        its grid; learnable-centers' offsets, whose gradient must reach the targets, so no torch.no_grad here)."""
        assert self.targets_entry is not None
        return self.targets_entry(**self._select("targets", {**(predictions or {}), **truths}))

    def _select(self, entrypoint: str, values: Mapping[str, Any]) -> Dict[str, Any]:
        """The inputs an entrypoint takes, size inputs read off the tensors where ``values`` lacks them."""
        names = self._signatures[entrypoint]
        values = {**self.om.sizes_from(values), **values}
        return {n: values[n] for n in names if n in values}

    def losses(self, predictions: Mapping[str, Tensor], truths: Mapping[str, Tensor],
               targets: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
        """The train entrypoint's outputs; with ``targets``, through the Session with those terms given."""
        if targets is None:
            values = {**predictions, **truths}
            return self.om_train_forward(**self._select("train", values))
        session = self.session
        session.bind(**self.om.sizes_from(predictions), **predictions, **truths)
        session.set_terms(dict(targets))  # the generated Session checks each name
        try:
            return {name: getattr(session, name)() for name in self.train_outputs}
        finally:
            session.bind()  # drop references to this batch

    def decode(self, predictions: Mapping[str, Tensor],
               truths: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
        """The infer entrypoint; an oracle variant's infer also takes truth inputs (give them in ``truths``)."""
        assert self.infer_entry is not None, f"OM {self.om.name} has no infer entrypoint"
        values = self._select("infer", {**(truths or {}), **predictions})
        missing = [n for n in self._signatures["infer"] if n not in values]
        if missing:
            raise KeyError(f"the infer entrypoint of {self.om.name}/{self.om.variant} needs {missing} "
                           f"(truth inputs of an oracle variant come from the batch: {sorted(truths or {})})")
        return self.infer_entry(**values)

    @torch.no_grad()
    def inspect(self, batch: Mapping[str, Any], terms: Sequence[str]) -> Dict[str, Any]:
        """Any terms of the OM for one batch, through the Session (logging, visualisation)."""
        net_out = self.network(*self.network_args(batch))
        session = self.session
        predictions = self.predictions(net_out)
        session.bind(**self.om.sizes_from(predictions), **predictions,
                     **self.truths(batch, self.om.truth_inputs, required=False))
        try:
            return {name: getattr(session, name)() for name in terms}
        finally:
            session.bind()

    # -- whole steps --------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> Dict[str, Tensor]:
        """Training: the batch -> the train entrypoint's outputs (losses)."""
        net_out = self.network(*self.network_args(batch))
        return self.losses_from(net_out, batch)

    def losses_from(self, net_out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Dict[str, Tensor]:
        predictions = self.predictions(net_out)
        if self.targets_mode == "inline":
            return self.losses(predictions, self.truths(batch, self.train_truth))
        if self.targets_mode == "device":
            targets = self.compute_targets(self.truths(batch, self.targets_truth), predictions)
        else:
            if TARGETS_KEY not in batch:
                raise KeyError("targets: loader needs batches from runtime.model.TargetsCollate")
            targets = batch[TARGETS_KEY]
        # the Session also gets the truth inputs at hand, for terms the targets do not cover
        return self.losses(predictions, self.truths(batch, self.train_truth, required=False), targets)

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any]) -> Dict[str, Tensor]:
        """Inference: the batch -> network outputs (as OM inputs) and the infer entrypoint's outputs (an oracle
        variant's truth inputs read from the batch)."""
        net_out = self.network(*self.network_args(batch))
        predictions = self.predictions(net_out)
        truths = self.truths(batch, [n for n in self._signatures.get("infer", []) if n in self.om.truth_inputs],
                             required=False)
        return {**predictions, **self.decode(predictions, truths)}


class TargetsCollate:
    """Collate function running the OM's ``targets`` entrypoint in the data-loader worker.

    ``collate`` builds the batch; the truth inputs (by name, through
    ``truth``) go through ``targets``; the result is ``batch["targets"]``.
    Picklable, so it works with worker processes.
    """

    def __init__(self, collate: Callable[[Sequence[Any]], Dict[str, Any]], om: OM,
                 config: Optional[Mapping[str, Any]] = None, truth: Optional[Mapping[str, str]] = None) -> None:
        self.collate = collate
        self.spec = (om.module.__name__, om.name, om.variant)
        self.config = dict(config or {})
        self.truth = dict(truth or {})
        self._entry: Optional[nn.Module] = None
        self._names: List[str] = []
        self._om = om

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_entry"] = None
        state["_om"] = None
        return state

    def _build(self) -> None:
        if self._om is None:
            import importlib
            import sys

            module = sys.modules.get(self.spec[0]) or importlib.import_module(self.spec[0])
            self._om = OM(module, self.spec[1], self.spec[2])
        self._entry = self._om.build("targets", self.config)
        self._names = self._om.signature("targets")
        self._sizes = [n for n in self._names if n in self._om.size_inputs]

    def __call__(self, samples: Sequence[Any]) -> Dict[str, Any]:
        batch = self.collate(samples)
        if self._entry is None:
            self._build()
        assert self._entry is not None
        missing = [self.truth.get(n, n) for n in self._names if self.truth.get(n, n) not in batch]
        if missing:
            sizes = [n for n in missing if n in [self.truth.get(s, s) for s in self._sizes]]
            predictions = [n for n in missing if n in self._om.prediction_inputs]
            hint = (f"; {sizes} are size inputs (the grid the targets are drawn on): the collate adds them, "
                    "e.g. batch['grid'] = [H // stride, W // stride]" if sizes else "")
            hint += (f"; {predictions} are network outputs, which the targets read (learnable-centers' offsets): "
                     "use targets: device or inline" if predictions else "")
            raise KeyError(f"targets: loader: the batch lacks {missing} for the OM's targets entrypoint "
                           f"(it has {sorted(batch)}){hint}")
        args = {name: batch[self.truth.get(name, name)] for name in self._names}
        with torch.no_grad():
            batch[TARGETS_KEY] = self._entry(**args)
        return batch

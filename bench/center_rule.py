"""Whole-pixel vs exact-centroid center targets, fed back as the prediction (issue 18).

    python bench/center_rule.py [--images 50] [--noise 0.3] [--seed 0]

For each synthetic val scene (train/data/synthetic.py, the demo's data) the
targets entrypoint of the ``synthetic`` variant (whole-pixel centers) and of
``exact-centers`` (config from ``synthetic``) gives the center heat map and
offsets; they go back into ``infer`` as the network outputs (semantic logits:
one-hot of the semantic truth; offsets: truth + N(0, noise) pixels), and the
decoded panoptic maps are scored with PQ. Prints, per rule, the decoded
centers against the instances and PQ / PQ things. Not a timed benchmark: a
measurement of what the rule does to the decoder.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from runtime.evaluation import PanopticQuality
    from train.data import CocoPanoptic
    from train.data.synthetic import write_dataset

    synthetic = importlib.import_module("generated.panoptic.synthetic")
    exact = importlib.import_module("generated.panoptic.exact_centers")
    preset = {k: v for k, v in synthetic.CONFIG.items() if exact.CONFIG.get(k) != v}
    rules = {"whole pixel (synthetic)": (synthetic, {}), "exact centroid (exact-centers)": (exact, preset)}
    with tempfile.TemporaryDirectory() as folder:
        write_dataset(Path(folder), 1, args.images, (128, 128), args.seed)
        ds = CocoPanoptic.from_root(folder, "val")
        pans = [torch.from_numpy(ds[i]["panoptic"].numpy())[None] for i in range(len(ds))]
    k = int(synthetic.CONFIG["num_classes"])
    results = {}
    for label, (module, config) in rules.items():
        targets = module.ENTRYPOINTS["targets"](**config)
        infer = module.ENTRYPOINTS["infer"](**config)
        pq = PanopticQuality(k, list(synthetic.CONFIG["thing_ids"]), int(synthetic.CONFIG["label_divisor"]),
                             int(synthetic.CONFIG["ignore_label"]))
        generator = torch.Generator().manual_seed(args.seed)
        centers = instances = 0
        for pan in pans:
            t = targets(pan)
            sem = t["semantic_truth"].clamp(0, k - 1)
            logits = torch.nn.functional.one_hot(sem[:, 0], k).permute(0, 3, 1, 2).float()
            offsets = t["offset_truth"] + args.noise * torch.randn(t["offset_truth"].shape, generator=generator)
            out = infer(logits, t["center_truth"], offsets)
            centers += int(out["center_valid"].sum()) if "center_valid" in out else 0
            instances += int(t["centroids_truth"].shape[0])
            pq.update(out["panoptic_pred"], pan)
        r = pq.compute()
        results[label] = {"instances": instances, "decoded_centers": centers, "pq": round(100 * r["pq"], 2),
                          "pq_things": round(100 * r["pq_things"], 2)}
        print(f"{label:32s} {instances} instances, {centers} decoded centers, PQ {100 * r['pq']:.2f}, "
              f"PQ things {100 * r['pq_things']:.2f}")
    print(json.dumps({"images": len(pans), "noise": args.noise, "seed": args.seed, "rules": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

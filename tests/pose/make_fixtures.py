"""Write tests/fixtures/pose: a tiny COCO person-keypoints dataset in the real on-disk format.

    python tests/pose/make_fixtures.py [OUT]

Two 96 x 64 JPEG images of stick figures (train/data/stick_figures.py) with the fields a real
person_keypoints_val2017.json has (info, licenses, images with coco_url / date_captured, polygon
segmentations, num_keypoints), plus what the real file holds besides labelled people: a crowd region
(RLE segmentation, iscrowd 1, no keypoints) and a person with no labelled joint.
"""
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from train.data.stick_figures import CATEGORY, render  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(out: Path = ROOT / "tests" / "fixtures" / "pose") -> None:
    from pycocotools import mask as rle

    (out / "val2017").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, seed in enumerate([3, 11]):
        image, anns = render(np.random.default_rng([seed]), 64, 96, max_people=2)
        name = f"{i + 1:012d}.jpg"
        cv2.imwrite(str(out / "val2017" / name), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        images.append({"license": 1, "file_name": name, "coco_url": f"http://images.cocodataset.org/val2017/{name}",
                       "height": 64, "width": 96, "date_captured": "2013-11-14 16:28:13", "flickr_url": "",
                       "id": 1000 + i})
        for a in anns:
            x, y, w, h = a["bbox"]
            poly = [x, y, x + w, y, x + w, y + h, x, y + h]
            annotations.append({"segmentation": [[round(v, 2) for v in poly]], "num_keypoints": a["num_keypoints"],
                                "area": a["area"], "iscrowd": 0, "keypoints": a["keypoints"], "image_id": 1000 + i,
                                "bbox": a["bbox"], "category_id": 1, "id": 500 + len(annotations)})
    crowd = np.zeros((64, 96), np.uint8)
    crowd[40:60, 60:90] = 1
    m = rle.encode(np.asfortranarray(crowd))
    annotations.append({"segmentation": {"counts": m["counts"].decode("ascii"), "size": [64, 96]},
                        "num_keypoints": 0, "area": float(crowd.sum()), "iscrowd": 1, "keypoints": [0] * 51,
                        "image_id": 1001, "bbox": [60.0, 40.0, 30.0, 20.0], "category_id": 1, "id": 900})
    annotations.append({"segmentation": [[2.0, 2.0, 12.0, 2.0, 12.0, 20.0, 2.0, 20.0]], "num_keypoints": 0,
                        "area": 150.0, "iscrowd": 0, "keypoints": [0] * 51, "image_id": 1000,
                        "bbox": [2.0, 2.0, 10.0, 18.0], "category_id": 1, "id": 901})
    data = {"info": {"description": "omgen test fixture in the COCO 2017 person keypoints format", "version": "1.0",
                     "year": 2017, "contributor": "omgen", "date_created": "2017/09/01"},
            "licenses": [{"url": "http://creativecommons.org/licenses/by/2.0/", "id": 1, "name": "Attribution"}],
            "images": images, "annotations": annotations, "categories": [CATEGORY]}
    (out / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "fixtures" / "pose")

import numpy as np
import pytest
import torch
import torch.nn as nn

from repro.data.indexed import ArrayImages, ImageFiles, IndexedDataset
from repro.eval.finetune import finetune, finetune_carl, label_subset, subset_from_split_file
from repro.eval.types import ModelData


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.bn = nn.BatchNorm2d(8)

    def feature_maps(self, x):
        return torch.relu(self.bn(self.conv(x)))

    def forward(self, x):
        return self.feature_maps(x).mean((2, 3))


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    images = (rng.random((n, 12, 12, 3)) * 60 + y[:, None, None, None] * 60).astype(np.uint8)

    def to_tensor(img):
        return torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)

    return IndexedDataset(ArrayImages(images), y, to_tensor, name="toy", split="train")


def test_runs_a_few_iterations_and_changes_the_backbone():
    backbone = _Tiny()
    before = backbone.conv.weight.detach().clone()
    data = ModelData(_data(), _data(seed=1), num_classes=3, feat_dim=8)
    out = finetune(backbone, data, seed=0, label_fraction=0.5, epochs=2, batch_size=8,
                   limit_batches=2)
    assert 0 <= out["top1"] <= out["top5"] <= 100
    assert out["artifacts"]["num_labelled"] == 30 and len(out["artifacts"]["label_indices"]) == 30
    assert out["selection"]["lr_head"]["value"] == 0.1
    assert not torch.equal(before, backbone.conv.weight)
    carl = finetune_carl(_Tiny(), data, seed=0, label_fraction=1.0, epochs=1, batch_size=16,
                         limit_batches=1)
    assert set(carl) >= {"top1", "selection", "artifacts"} and "top5" not in carl


def test_label_subset_seeded_and_stratified():
    ds = _data(90)
    a = label_subset(ds, 0.1, seed=3)
    np.testing.assert_array_equal(a, label_subset(ds, 0.1, seed=3))
    assert np.bincount(ds.targets[a]).tolist() == [3, 3, 3]
    with pytest.raises(ValueError):
        label_subset(ds, 0.0, seed=0)


def test_simclr_split_file(tmp_path):
    paths = [f"/imagenet/train/n0{i % 3}/n0{i % 3}_{i}.JPEG" for i in range(9)]
    ds = IndexedDataset(ImageFiles(paths), np.arange(9) % 3, None, indices=np.arange(1, 9))
    split = tmp_path / "1percent.txt"
    split.write_text("n02_5.JPEG\nn01_1.JPEG\n")
    np.testing.assert_array_equal(subset_from_split_file(ds, split), [0, 4])
    split.write_text("n00_0.JPEG\n")  # index 0 is not served by this dataset
    with pytest.raises(ValueError, match="not in the train split"):
        subset_from_split_file(ds, split)

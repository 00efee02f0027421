"""Evaluation protocols, looked up by name.

Every protocol is a function. ``inputs="features"`` protocols take cached arrays
(``fn(train: Features, test: Features, *, seed: int, **params) -> dict``);
``inputs="model"`` protocols take a frozen or trainable backbone and datasets
(``fn(backbone, data: ModelData, *, seed: int, device: str = "cpu", **params) -> dict``).
Evaluations never import ``repro.methods``. This module imports no torch.
"""

from repro.registry import Registry

# name -> "module:function". Keep sorted; tests iterate over this registry.
PROTOCOLS = Registry(
    "protocol",
    {
        "clustering": "repro.eval.clustering:clustering",
        "detection": "repro.eval.detection:detection",
        "finetune": "repro.eval.finetune:finetune",
        "finetune_carl": "repro.eval.finetune:finetune_carl",
        "knn": "repro.eval.knn:knn",
        "linear_probe": "repro.eval.linear_probe:linear_probe",
        "linear_probe_augmented": "repro.eval.linear_probe:linear_probe_augmented",
        "linear_probe_carl": "repro.eval.linear_probe:linear_probe_carl",
        "low_shot_svm_places205": "repro.eval.low_shot:low_shot_svm_places205",
        "low_shot_svm_voc07": "repro.eval.low_shot:low_shot_svm_voc07",
        "nemd": "repro.eval.nemd:nemd",
        "svm_places205": "repro.eval.svm:svm_places205",
        "svm_voc07": "repro.eval.svm:svm_voc07",
    },
)

# What each protocol consumes: "features" (cached arrays) or "model" (a backbone + datasets).
PROTOCOL_INPUTS = {
    "clustering": "features",
    "detection": "model",
    "finetune": "model",
    "finetune_carl": "model",
    "knn": "features",
    "linear_probe": "features",
    "linear_probe_augmented": "model",
    "linear_probe_carl": "features",
    "low_shot_svm_places205": "features",
    "low_shot_svm_voc07": "features",
    "nemd": "features",
    "svm_places205": "features",
    "svm_voc07": "features",
}

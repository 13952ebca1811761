"""The training engine: one loop for every hepdl model and objective, and whole runs on shards.

    from hepdl.train import TrainSettings, train
    result = train(model, train_set, val_set, TrainSettings(epochs=5), out_dir="run/")

    run = train_model("results/prepared/jets_sim_0", {"model": {"name": "jet_cnn"}}, "run/")

Names are imported on first use: the numpy-only parts (``hepdl.train.reweight``, used by the
evaluation) then do not pull in torch.
"""

import importlib

_LAZY = {
    "ImageAugment": "augment", "jet_image_augment": "augment", "pixel_map_augment": "augment",
    "ArrayDataset": "data", "EpochBatchSampler": "data",
    "choose_device": "device",
    "PREEMPTED_EXIT_CODE": "engine", "TrainResult": "engine", "evaluate": "engine", "predict": "engine",
    "train": "engine",
    "OBJECTIVES": "objectives", "Classify": "objectives", "Objective": "objectives", "make_objective": "objectives",
    "register_objective": "objectives",
    "SpectrumReweighter": "reweight", "reweight_background_to_signal": "reweight",
    "TrainSettings": "settings", "load_settings": "settings",
    "TrainingRun": "training_run", "train_model": "training_run",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"hepdl.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hepdl.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

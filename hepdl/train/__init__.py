"""The training engine: one loop for every hepdl model and objective, and whole runs on shards.

    from hepdl.train import TrainSettings, train
    result = train(model, train_set, val_set, TrainSettings(epochs=5), out_dir="run/")

    run = train_model("results/prepared/jets_sim_0", {"model": {"name": "jet_cnn"}}, "run/")
"""

from hepdl.train.augment import ImageAugment, jet_image_augment, pixel_map_augment
from hepdl.train.data import ArrayDataset, EpochBatchSampler
from hepdl.train.device import choose_device
from hepdl.train.engine import PREEMPTED_EXIT_CODE, TrainResult, evaluate, predict, train
from hepdl.train.objectives import (
    OBJECTIVES,
    Classify,
    Objective,
    make_objective,
    register_objective,
)
from hepdl.train.reweight import SpectrumReweighter, reweight_background_to_signal
from hepdl.train.settings import TrainSettings, load_settings
from hepdl.train.training_run import TrainingRun, train_model

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "ArrayDataset",
    "Classify",
    "EpochBatchSampler",
    "OBJECTIVES",
    "ImageAugment",
    "Objective",
    "SpectrumReweighter",
    "TrainResult",
    "TrainSettings",
    "TrainingRun",
    "choose_device",
    "evaluate",
    "jet_image_augment",
    "load_settings",
    "make_objective",
    "pixel_map_augment",
    "predict",
    "register_objective",
    "reweight_background_to_signal",
    "train",
    "train_model",
]

"""XGBoost on tabular features: expert jet/event variables, autoencoder codes."""

from hepdl.bdt.boosted_trees import (
    BDTSettings,
    load_bdt,
    predict_bdt,
    save_bdt,
    select_features,
    train_bdt,
)

__all__ = ["BDTSettings", "load_bdt", "predict_bdt", "save_bdt", "select_features", "train_bdt"]

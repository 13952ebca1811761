# Training from Python: the snippet of README's "Train from Python" section.
# tests/test_training_run.py runs this file as it is (in a directory holding prepared shards).
import glob

import hepdl

# the default pipeline's jet CNN (config/config.yaml, jets.models.cnn), with the task's pT reweighting
cnn = {
    "model": {"name": "jet_cnn", "channels": [32, 64, 64], "dropout": 0.2, "spatial_pool": 4},
    "epochs": 12, "batch_size": 128, "optimizer": "adamw", "learning_rate": 0.001, "weight_decay": 0.0001,
    "early_stopping_patience": None, "augment": False, "reweight": "pt",
}
run = hepdl.train_model(sorted(glob.glob("results/prepared/jets_sim_*")), cnn, "my_cnn")
print(f"best epoch {run.result.best_epoch}: test AUC {run.metrics['test_auc']:.3f}; wrote {run.model_file}")

# what hepdl train writes: the model file, checkpoint, metrics.csv, training curve, scores, train_info.json;
# the model file scores ROOT files like any other
model = hepdl.load_model(run.model_file)
print(model)

# hepdl in your analysis: the snippet of README's "Use in your analysis" section.
# tests/test_scoring.py runs this file as it is (in a directory holding these paths).
import hepdl

# the network, its weights and the jet-image settings it was trained with, from one file
model = hepdl.load_model("results/jets/cnn/model.pt", device="auto")
print(model.classes, model.metrics.get("test_auc"))

# P(signal) for every jet of your ntuple, read in chunks, batched on the GPU if there is one
scores = model.predict("my_jets.root", tree="events")
jets = hepdl.read_events("my_jets.root", "events", ["jet_pt", "jet_mass"])
tagged = jets[scores > 0.5]
print(f"{len(tagged)} of {len(jets)} jets tagged")

# an ntuple with other branch names: map the logical fields onto them
scores_user = model.predict("user_jets.root", fields={
    "calo_eta": "tower_eta", "calo_phi": "tower_phi", "calo_e": "tower_e",
    "trk_pt": "track_pt", "trk_eta": "track_eta", "trk_phi": "track_phi",
    "jet_pt": "fj_pt", "jet_eta": "fj_eta", "jet_phi": "fj_phi", "jet_mass": "fj_mass",
})

# the scores as a friend tree, entry by entry aligned with the input tree; in ROOT:
#   events->AddFriend("scores", "my_jets.scores.root"); events->Draw("jet_mass", "scores.score > 0.5");
hepdl.score_file(model, "my_jets.root", "my_jets.scores.root")

"""The paper's comparison methods, built on Tagger's shared parts (data, metrics, run log,
device, errors): Table 2's classifiers (:mod:`.models`, trained by :mod:`.train`) and
Reconstruction Clustering, Table 1b's earlier work (:mod:`.reconstruction_clustering`, run by
:mod:`.rc_train`)."""

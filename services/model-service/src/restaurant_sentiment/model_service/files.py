"""The files of a model version folder `<model dir>/<version>/`."""

# The original system's artefact names: a fitted vectoriser and a fitted classifier.
VECTORIZER_FILE = "c1_BoW_Sentiment_Model.pkl"
CLASSIFIER_FILE = "c2_Classifier_Sentiment_Model"
# The calibration of the classifier's confidence (optional: without it, its own sigmoid).
CALIBRATION_FILE = "c3_Calibration.pkl"
# The serving tables reduced from the artefacts above at training time (optional: without them,
# or when they were reduced from other artefacts, the service reduces the artefacts itself).
TABLES_FILE = "c4_Serving_Tables.npz"
# Checksums of the artefacts, training data and evaluation figures, written by training.
METADATA_FILE = "metadata.json"

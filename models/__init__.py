"""Model assets: trained classifiers and the offline-capable resolver of pretrained files."""

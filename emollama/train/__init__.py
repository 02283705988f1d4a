"""Training code: the recipes that rebuild the shipped heads (:mod:`emollama.train.heads`) and what they share."""

"""Cached encoder features for training: the store (:mod:`.store`), extraction from clips through the
inference media path (:mod:`.extract`), and the original project's feature folders (:mod:`.official`).

Why a cache at all: the four encoders are frozen, so running them once per clip instead of once
per clip per training step changes nothing but the cost; the store's manifest makes sure the cache
matches the encoders the model will meet at inference.
"""

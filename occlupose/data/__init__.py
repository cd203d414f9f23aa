"""Datasets, targets, augmentation and the synthetic occlusion benchmark."""

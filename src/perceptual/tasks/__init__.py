"""LightningModules: one per task, sharing the training plumbing in :mod:`perceptual.tasks.base`."""

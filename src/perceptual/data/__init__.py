"""Datasets and DataModules: image folders / COCO, built-in sample images, SR crops."""

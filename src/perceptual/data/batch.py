"""The keys of the sample and batch dicts: the data modules write them, the tasks and evaluation read them."""

IMAGE_KEY = "image"  # a content image or crop: [3, H, W] per sample, [B, 3, H, W] per batch, RGB in [0, 1]
LR_KEY = "lr"  # super-resolution input
HR_KEY = "hr"  # super-resolution target
NAME_KEY = "name"  # benchmark samples: the image's name
STYLE_INDEX_KEY = "style_index"  # multi-style training (StyleBank): the style of each sample
SKIPPED_KEY = "skipped"  # per batch: how many of its samples were unreadable and dropped

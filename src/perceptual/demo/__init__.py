"""The local web demo (``python src/demo.py``): the nets it offers (:mod:`~perceptual.demo.catalogue`), what it does
with an upload (:mod:`~perceptual.demo.render`) and its page (:mod:`~perceptual.demo.app`, Gradio: the ``demo``
extra)."""

"""Knowledge layer: files → units (corpus) → vectors (embedder, index) → hits (retrieval).

Depends on settings only; never on chat, web or measure.
"""

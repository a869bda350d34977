"""LLM layer: which chat model and how it gets onto the device (models), and running it (engine).

Never imports chat, web or measure.
"""

"""Web layer: what the browser and HTTP clients see (Gradio app, chat and documents tabs, rendering)."""

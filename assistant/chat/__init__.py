"""Chat layer: one conversational turn (chain) and its citations. Never imports web."""

"""A training run's log: read it (parse), judge its curves (detect), draw them (plot), and turn what
they show into a question for the documents (diagnose). Never imports web, cli or measure."""

"""Review of a change: the pipeline, its runners and reviewers, the definition of done."""

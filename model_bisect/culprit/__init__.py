"""Why the first bad model is bad: what changed in its graph, where its predictions part from
the last good model's, and on which rows it hurts (issue 19)."""

"""Publishing: the comment body, its history, redaction, GitHub, Actions output, the terminal."""

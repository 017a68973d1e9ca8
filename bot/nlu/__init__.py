"""Understanding a message: the intent schema, the LM-backed parser and its drafts."""

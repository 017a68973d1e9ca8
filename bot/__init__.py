"""shopbot: the chat bot, its settings, API, UI and CLI."""

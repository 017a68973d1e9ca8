"""The bot's own SQLite stores: conversations (sessions and turns) and orders."""

"""How people reach the bot: the HTTP app (REST, OpenAI-compatible, Chatwoot, widget, the
Gradio page) and who may call it."""

"""The Gradio page at `/`: chat with the shop's assistant, see product cards, give feedback.

The page only collects input and renders what `ChatService` returns: the reply streams in,
product cards show image, title, price, rating and stock, with like/dislike buttons that
feed the scorer; answers can be liked or disliked too (that counts for the products they
showed). "Talk to a person" hands the conversation over; while a person has it, the page
looks for their messages every few seconds and shows them as they come (and stops once
the conversation is given back to the bot). A Browse tab searches the catalog with
filters. `/?embed=1` is the compact page the widget opens in its iframe.

Everything shown from the catalog is HTML-escaped, so a product title cannot inject markup,
and chat messages are shown as text: HTML and markdown syntax (links, images) never render.

Each browser is a visitor (`bot.channels.visitors`: a signed HttpOnly cookie the server issues); its
conversation id lives in the browser's storage, but the server shows, continues and takes
feedback on a conversation only for the visitor that started it. A stored id that is not
this visitor's is replaced by a new conversation.
"""

from __future__ import annotations

import logging
import re
from html import escape
from typing import TYPE_CHECKING, Any

import gradio as gr

from bot.dialogue.grounding import money
from bot.dialogue.reply import Reply
from bot.prompts import prompt_table, render
from bot.settings import MAX_MESSAGE_CHARS, MAX_QUERY_CHARS
from bot.stores.sessions import UnknownSession, new_session_id
from retrieval.events import FeedbackEvent, InvalidEvent, UnknownProduct
from retrieval.filters import ProductFilters

if TYPE_CHECKING:
    from bot.channels.visitors import VisitorCredentials
    from bot.dialogue.service import ChatService
    from bot.shop import Shop

log = logging.getLogger("shopbot.ui")

HISTORY_TURNS = 50  # turns a reloaded page shows
POLL_SECONDS = 3  # how often a page a person has taken over looks for their messages
FEEDBACK_KINDS = ("like", "dislike")
MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]()#!|~{}])")

PAGE_CSS = """
.cards {display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 12px;}
.card {border: 1px solid #ddd; border-radius: 12px; padding: 10px; background: #fff;}
.card img {width: 100%; border-radius: 8px; aspect-ratio: 1;}
.card .title {font-weight: 600; font-size: 0.92rem; margin: 6px 0 4px; color: #222;}
.card .meta {font-size: 0.85rem; color: #555;}
.card .price {font-weight: 700; color: #111;}
.card .stock-out {color: #b3261e;}
.card .stock-in {color: #1b7f3b;}
.card .why {font-size: 0.78rem; color: #6b4e00; margin-top: 2px;}
.card .feedback {display: flex; gap: 6px; margin-top: 6px;}
#cards .card .feedback button {border: 1px solid #ccc; border-radius: 8px; background: #f7f7f7;
  padding: 2px 8px; cursor: pointer; font-size: 0.78rem; font-weight: 500; line-height: 1.4;}
.card .feedback button.chosen {background: #dbe7ff; border-color: #0b5fff;}
.comparison {border-collapse: collapse; width: 100%; font-size: 0.88rem; margin-bottom: 10px;}
.comparison th, .comparison td {border: 1px solid #ddd; padding: 4px 8px; text-align: left;}
#status {min-height: 1.2em;}
"""

# Card buttons report clicks to Python through Gradio's event bus (no REST key needed).
CARDS_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-kind]');
  if (!button) return;
  const card = button.closest('.card');
  card.querySelectorAll('button[data-kind]').forEach((b) => b.classList.remove('chosen'));
  button.classList.add('chosen');
  trigger('click', {product_id: card.dataset.productId, kind: button.dataset.kind,
                    position: Number(card.dataset.position)});
});
"""

# Inside the widget's iframe, Escape asks the host page's widget to close the chat.
EMBED_HEAD = """<script>
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && window.parent !== window)
    window.parent.postMessage({type: "shopbot:close"}, "*");
});
</script>"""


def render_cards(products: list[dict[str, Any]], feedback: bool = True) -> str:
    """Product cards as HTML: image, title, price, rating, stock, why, like/dislike.
    Takes the products of a structured reply (or `RankedProduct.to_dict()`); all escaped."""
    if not products:
        return ""
    cards = []
    for position, p in enumerate(products, start=1):
        pid = escape(str(p["id"]), quote=True)
        price = p.get("price")
        money_shown = escape(money(price, p.get("currency"))) if price is not None else ""
        rating = ""
        if p.get("rating") is not None:
            rating = f"★ {p['rating']:.1f}" + (
                f" ({p['review_count']})" if p.get("review_count") else ""
            )
        stock = ""
        if p.get("in_stock") is not None:
            stock = (
                '<span class="stock-in">In stock</span>'
                if p["in_stock"]
                else '<span class="stock-out">Out of stock</span>'
            )
        image = escape(p.get("image_url") or f"/images/{p['id']}.svg", quote=True)
        reasons = "".join(
            f'<div class="why">{escape(str(r.get("text", r)) if isinstance(r, dict) else r)}</div>'
            for r in (p.get("reasons") or [])[:2]
        )
        buttons = (
            '<div class="feedback">'
            '<button type="button" data-kind="like">Like</button>'
            '<button type="button" data-kind="dislike">Not for me</button></div>'
            if feedback
            else ""
        )
        cards.append(
            f'<div class="card" data-product-id="{pid}" data-position="{position}">'
            f'<img src="{image}" alt="" loading="lazy">'
            f'<div class="title">[{position}] {escape(str(p.get("title", "")))}</div>'
            f'<div class="meta"><span class="price">{money_shown}</span> {rating}</div>'
            f'<div class="meta">{escape(str(p.get("brand") or ""))} {stock}</div>'
            f"{reasons}{buttons}</div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def render_comparison(table: dict[str, Any] | None) -> str:
    """A compare_products reply's attribute table, escaped."""
    if not table or not table.get("columns"):
        return ""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in table["columns"])
    rows = "".join(
        f"<tr><th>{escape(str(row.get('attribute', '')))}</th>"
        + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in row.get("values", []))
        + "</tr>"
        for row in table.get("rows", [])
    )
    return f'<table class="comparison"><tr><th></th>{head}</tr>{rows}</table>'


def render_reply_extras(reply: Reply) -> str:
    """What goes under the chat for one reply: comparison table, then product cards."""
    shown = reply.model_dump(mode="json", include={"comparison", "products"})
    return render_comparison(shown["comparison"]) + render_cards(shown["products"])


def as_text(text: str) -> str:
    """Chat text for the chatbot's markdown renderer that shows exactly as written: HTML
    escaped and markdown syntax backslash-escaped, so no link, image or tag renders.

    >>> print(as_text("[win](https://evil.example) <b>now</b>"))
    \\[win\\]\\(https://evil.example\\) &lt;b&gt;now&lt;/b&gt;
    """
    return escape(MARKDOWN_SYNTAX.sub(r"\\\1", text), quote=False)


def said(turn: dict[str, Any]) -> str:
    """A stored turn's reply as the chat shows it; a person's, with their name."""
    reply = as_text(turn["reply"])
    if turn["route"] == "agent":
        return f"{as_text(turn.get('author') or 'Our team')}: {reply}"
    return reply


def build_page(shop: Shop, chats: ChatService, visitors: VisitorCredentials) -> gr.Blocks:
    texts = prompt_table("page.toml")

    def visitor(request: gr.Request | None) -> str | None:
        return visitors.owner_of(getattr(request, "cookies", None)) if request else None

    def owned(session_id: str | None, request: gr.Request | None) -> str | None:
        """The session id if it is this visitor's, else None."""
        owner = visitor(request)
        if session_id and owner and chats.sessions.belongs_to(session_id, owner):
            return session_id
        return None

    def start(session_id: str | None, request: gr.Request):
        """On page load: keep the browser's conversation (it survives reloads and server
        restarts) and show its turns; `?embed=1` hides the header and the Browse tab."""
        embedded = bool(request and request.query_params.get("embed"))
        history: list[dict[str, str]] = []
        agents, waiting = 0, False
        if owned(session_id, request):
            turns = chats.sessions.history(session_id, limit=HISTORY_TURNS)
            for turn in turns:
                if turn["message"]:  # an agent's turn has no shopper message
                    history.append({"role": "user", "content": as_text(turn["message"])})
                if turn.get("reply"):
                    history.append({"role": "assistant", "content": said(turn)})
            agents = sum(turn["route"] == "agent" for turn in turns)
            waiting = chats.sessions.state(session_id).handed_off
        else:
            session_id = new_session_id("web-")
        return (
            session_id,
            history,
            gr.update(visible=not embedded),
            gr.update(visible=not embedded),
            agents,
            gr.Timer(active=waiting),
        )

    def watch(session_id: str | None, request: gr.Request):
        """After a turn: listen for a person's messages while one has the conversation."""
        mine = owned(session_id, request)
        return gr.Timer(active=bool(mine and chats.sessions.state(mine).handed_off))

    def agent_messages(session_id: str | None, history: list, seen: int, request: gr.Request):
        """While a person has the conversation: show their new messages as they come, and
        stop listening once it is given back to the bot."""
        mine = owned(session_id, request)
        if not mine:
            return gr.update(), seen, gr.Timer(active=False)
        agents = [t for t in chats.sessions.history(mine, HISTORY_TURNS) if t["route"] == "agent"]
        listening = gr.Timer(active=chats.sessions.state(mine).handed_off)
        if len(agents) <= seen:
            return gr.update(), len(agents), listening
        new = [{"role": "assistant", "content": said(turn)} for turn in agents[seen:]]
        return [*history, *new], len(agents), listening

    def send(message: str, history: list, session_id: str, shown: dict, request: gr.Request):
        """Stream one turn into the chat; the cards and suggestions follow the reply."""
        message = (message or "").strip()
        owner = visitor(request)
        if not message or owner is None:
            yield history, gr.update(), gr.update(), "", shown, gr.update(), session_id
            return
        session_id = session_id or new_session_id("web-")  # sent before the page loaded
        # Messages are shown as text: markup a shopper types (or a reply quotes) never renders.
        history = [*history, {"role": "user", "content": as_text(message)}]
        history.append({"role": "assistant", "content": "…"})
        yield history, "", gr.update(), "", shown, gr.update(), session_id
        text, reply = "", None
        try:
            try:
                events = chats.stream(message, session_id, owner=owner)
                first = next(events, None)
            except UnknownSession:  # the stored id is not this visitor's: start afresh
                session_id = new_session_id("web-")
                events = chats.stream(message, session_id, owner=owner)
                first = next(events, None)
            for event in [first, *events] if first else []:
                if event["type"] == "delta":
                    text += event["text"]
                    history[-1] = {"role": "assistant", "content": as_text(text)}
                    yield history, "", gr.update(), "", shown, gr.update(), session_id
                elif event["type"] == "reply":
                    reply = event["reply"]
        except Exception:
            log.exception("chat turn failed")
            history[-1] = {"role": "assistant", "content": texts["turn_failed"]}
            yield history, "", gr.update(), "", shown, gr.update(), session_id
            return
        if reply is None:  # the turn ended without its reply: what was streamed stays
            history[-1] = {"role": "assistant", "content": as_text(text or "…")}
            yield history, "", gr.update(), "", shown, gr.update(), session_id
            return
        history[-1] = {"role": "assistant", "content": as_text(reply.reply or text or "…")}
        status = texts["handed_off"] if reply.handoff else ""
        answer_index = str(len(history) - 1)
        shown = {**shown, answer_index: [product.id for product in reply.products]}
        follow_ups = [[f] for f in reply.follow_ups][:3]
        yield (
            history,
            "",
            render_reply_extras(reply),
            status,
            shown,
            gr.update(samples=follow_ups, visible=bool(follow_ups)),
            session_id,
        )

    def product_feedback(session_id: str, evt: gr.EventData, request: gr.Request) -> str:
        data = getattr(evt, "_data", None) or {}
        kind, product_id = data.get("kind"), data.get("product_id")
        if kind not in FEEDBACK_KINDS or not product_id or not owned(session_id, request):
            return ""
        try:
            shop.record_feedback(
                FeedbackEvent(
                    type=kind,
                    product_id=str(product_id),
                    session_id=session_id,
                    position=data.get("position"),
                )
            )
        except (InvalidEvent, UnknownProduct) as exc:
            return render(texts["feedback_failed"], reason=exc)
        return texts["liked"] if kind == "like" else texts["disliked"]

    def answer_feedback(session_id: str, shown: dict, evt: gr.LikeData, request: gr.Request) -> str:
        """A liked or disliked answer counts for each product it showed."""
        if not owned(session_id, request):
            return ""
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        kind = "like" if evt.liked else "dislike"
        for position, product_id in enumerate(shown.get(str(index), []), start=1):
            try:
                shop.record_feedback(
                    FeedbackEvent(
                        type=kind, product_id=product_id, session_id=session_id, position=position
                    )
                )
            except (InvalidEvent, UnknownProduct) as exc:
                log.warning("answer feedback not recorded: %s", exc)
        return texts["answer_feedback"]

    def browse(query: str, price_max: float | None, category: str | None, in_stock: bool) -> str:
        try:
            filters = ProductFilters(
                price_max=price_max or None,
                category=[category] if category else [],
                in_stock=True if in_stock else None,
            )
        except (ValueError, TypeError) as exc:
            return f"<p>{escape(str(exc))}</p>"
        hits = shop.recommend(query[:MAX_QUERY_CHARS], 12, filters)
        if not hits:
            return "<p>No products match. Try other words or fewer filters.</p>"
        return render_cards([hit.to_dict() for hit in hits], feedback=False)

    store = shop.settings.store_name
    with gr.Blocks(title=store) as page:
        session_id = gr.BrowserState(None, storage_key="shopbot-session")
        shown = gr.State({})
        agents_seen = gr.State(0)  # a person's messages already shown
        listen = gr.Timer(POLL_SECONDS, active=False)  # on while a person has the chat
        with gr.Row(elem_id="header") as header:
            gr.Markdown(f"## {escape(store)}\nAsk for products in your own words, or for help.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                chatbot = gr.Chatbot(
                    elem_id="chat",
                    height=420,
                    show_label=False,
                    feedback_options=("Like", "Dislike"),
                    sanitize_html=True,
                    render_markdown=True,
                )
                with gr.Row(equal_height=True):
                    message = gr.Textbox(
                        placeholder="e.g. waterproof hiking boots under 150",
                        show_label=False,
                        scale=5,
                        max_length=MAX_MESSAGE_CHARS,
                        elem_id="chat-input",
                        autofocus=True,
                    )
                    send_button = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                follow_ups = gr.Dataset(
                    components=[message],
                    samples=[],
                    label="Try next",
                    visible=False,
                    elem_id="follow-ups",
                )
                status = gr.Markdown(elem_id="status")
                cards = gr.HTML(elem_id="cards", js_on_load=CARDS_JS)
                with gr.Row():
                    gr.Examples(texts["examples"], inputs=message, label="Examples")
                    person = gr.Button("Talk to a person", elem_id="talk-to-person", size="sm")
            with gr.Tab("Browse", id="browse-tab") as browse_tab:
                with gr.Row():
                    query = gr.Textbox(
                        placeholder="e.g. waterproof hiking boots",
                        show_label=False,
                        scale=5,
                        max_length=MAX_QUERY_CHARS,
                        elem_id="query",
                    )
                    search_button = gr.Button("Search", scale=1, elem_id="search")
                with gr.Accordion("Filters", open=True, elem_id="filters"):
                    price_max = gr.Number(label="Max price", minimum=0, value=None)
                    category = gr.Dropdown(choices=shop.categories(), label="Category", value=None)
                    in_stock = gr.Checkbox(label="In stock only", value=False)
                results = gr.HTML(elem_id="results")

        outputs = [chatbot, message, cards, status, shown, follow_ups, session_id]
        page.load(
            start,
            [session_id],
            [session_id, chatbot, header, browse_tab, agents_seen, listen],
        )
        inputs = [message, chatbot, session_id, shown]
        send_button.click(send, inputs, outputs).then(watch, [session_id], [listen])
        message.submit(send, inputs, outputs).then(watch, [session_id], [listen])
        follow_ups.click(lambda sample: sample[0], follow_ups, message).then(
            send, inputs, outputs
        ).then(watch, [session_id], [listen])
        person.click(lambda: texts["handoff_message"], None, message).then(
            send, inputs, outputs
        ).then(watch, [session_id], [listen])
        listen.tick(
            agent_messages, [session_id, chatbot, agents_seen], [chatbot, agents_seen, listen]
        )
        cards.click(product_feedback, [session_id], status)
        chatbot.like(answer_feedback, [session_id, shown], status)
        browse_inputs = [query, price_max, category, in_stock]
        search_button.click(browse, browse_inputs, results)
        query.submit(browse, browse_inputs, results)
    return page

"""Product text is data: catalog records come from the store's feeds and may be hostile.

A record's type, title or description must not become a sentence, a live link or a contact
detail in a reply; only the policy text a reply uses may supply URLs, phones and e-mails.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk

from bot.dialogue.grounding import ground_reply, plain_text, resolve_references
from bot.dialogue.writer import ReplyWriter, product_kind, record_reply
from bot.prompts import prompt_table, render
from retrieval.catalog import Product
from retrieval.policies import PolicyDoc

HOSTILE_TYPE = "raincoat. urgent: call +1 555 0100 or visit evil.example"
SUPPORT = PolicyDoc(
    id="support#contact",
    doc="support",
    title="Support",
    section="Contact us",
    text="- **Email**: support@shop.example.\n- **Phone**: 1-800-555-0199, weekdays.\n"
    "Start a return at https://www.shop.example/returns.",
)


def shell(**fields) -> Product:
    record = {"id": "R1", "title": "Storm Shell", "brand": "Drizzle", "price": 59.0,
              "category": "Jackets", "attributes": {"type": "rain jacket"}} | fields  # fmt: skip
    return Product(**record)


class ScriptedChatModel:
    """A chat model that continues the lead with fixed text, a few characters at a time."""

    continues_final_message = True

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen: list = []

    def stream(self, messages):
        self.seen = list(messages)
        for start in range(0, len(self.text), 7):
            yield AIMessageChunk(content=self.text[start : start + 7])


def streamed(writer: ReplyWriter, products=(), lead=None) -> str:
    pieces = writer.stream("rain jackets", products, lead=lead)
    return "".join(piece for piece in pieces if isinstance(piece, str)).strip()


def search_lead(products) -> str:
    return render(prompt_table("canned_replies.toml")["search_lead"], thing=product_kind(products))


def test_a_hostile_product_type_never_becomes_the_lead_sentence():
    said = "A shell that keeps the rain out."  # backs the reply's "keeps the rain out"
    hostile = [
        shell(description=said, attributes={"type": HOSTILE_TYPE}),
        shell(id="R2", description=said, attributes={"type": HOSTILE_TYPE}),
    ]
    assert product_kind(hostile) == "options"
    model = ScriptedChatModel("[1] keeps the rain out. [2] packs small.")
    text = streamed(ReplyWriter(model, "Test Shop"), hostile, lead=search_lead(hostile))
    assert text == (
        "Here are some options you might like. Storm Shell ($59.00) keeps the rain out. "
        "Storm Shell ($59.00) packs small."
    )
    assert not any(word in text.lower() for word in ("555", "evil", "urgent"))
    assert model.seen[-1].content == "Here are some options you might like."


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Rain Jacket", "rain jackets"),
        ("t-shirt", "t-shirts"),
        ("men's hiking boot", "men's hiking boots"),
        ("lightweight packable rain jacket", "options"),  # four words
        ("extraordinarilylongnamedjackets", "options"),  # over 30 characters
        ("size 10 boots", "options"),
        ("boots!", "options"),
        ("<b>boots</b>", "boots"),  # plain once its markup is gone
        ("jacket\u202e", "jackets"),
    ],
)
def test_a_product_type_names_the_lead_only_as_a_short_plain_noun_phrase(kind, expected):
    assert product_kind([shell(attributes={"type": kind})]) == expected


def test_a_markdown_link_in_a_title_reaches_the_reply_as_plain_text():
    link, image = "[Free gift](https://evil.example)", "![x](https://evil.example/a.png)"
    gift = shell(title=f"{link} {image} **Storm** <b>Shell</b>")
    assert (
        resolve_references("[1] is light.", [gift]) == "Free gift x Storm Shell ($59.00) is light."
    )
    assert record_reply([gift]) == "Here is what I found: Free gift x Storm Shell ($59.00)."
    model = ScriptedChatModel("[1] is light.")
    assert (
        streamed(ReplyWriter(model, "Test Shop"), [gift])
        == "Free gift x Storm Shell ($59.00) is light."
    )
    nothing_left = shell(title="https://evil.example/deal")
    assert resolve_references("[1] is light.", [nothing_left]) == "this product ($59.00) is light."


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("Storm Shell\u200b evil\u200b.example", "Storm Shell"),  # zero-width split domain
        ("Storm Shell ｅｖｉｌ．ｅｘａｍｐｌｅ", "Storm Shell"),  # full-width letters
        ("Storm Shell evil[.]com/deal", "Storm Shell"),  # defanged
        ("Storm &lt;a href=x&gt;Shell&lt;/a&gt;", "Storm Shell"),  # escaped tags
        ("Storm Shell www.evil.example", "Storm Shell"),
        ("Storm Shell, mail deals@evil.example", "Storm Shell, mail"),
        ("Storm Shell (call 555-010-0199)", "Storm Shell (call)"),
        ("# Storm | Shell ~~sale~~ `code`", "Storm Shell sale code"),
        ("Storm\n\n\tShell\x00\x07", "Storm Shell"),
        ("Storm Shell (Red)", "Storm Shell (Red)"),
    ],
)
def test_links_and_contacts_hidden_in_a_title_are_removed(title, shown):
    assert plain_text(title, 120) == shown


def test_a_long_title_is_cut_at_a_word():
    assert plain_text("Storm Shell " * 20, 30) == "Storm Shell Storm Shell Storm…"


def test_the_reply_check_drops_urls_phones_and_emails_no_record_backs():
    sold = shell(description="Questions? Call +1 555 0100 or see evil.example/deal.")
    checked = ground_reply(
        "[1] is light. Order at https://evil.example/deal now. Call +1 555 0100 today. "
        "Write to deals@evil.example for a coupon. See www.evil.example. Try evil.com/path! "
        "[Claim it](https://evil.example) here. It costs $59.",
        [sold],
    )
    assert checked.text == "Storm Shell ($59.00) is light. It costs $59."
    assert checked.removed == [
        "Order at https://evil.example/deal now.",
        "Call +1 555 0100 today.",  # the product's own description backs nothing
        "Write to deals@evil.example for a coupon.",
        "See www.evil.example.",
        "Try evil.com/path!",
        "[Claim it](https://evil.example) here.",
    ]
    model = ScriptedChatModel("[1] is light. Call +1 555 0100 to order. ")
    assert streamed(ReplyWriter(model, "Test Shop"), [sold]) == "Storm Shell ($59.00) is light."


def test_contact_details_from_the_policy_text_may_be_quoted():
    checked = ground_reply(
        "Call 1 (800) 555-0199. Or call 1-800-555-0100. Mail SUPPORT@shop.example. "
        "Mail refunds@shop.example. Returns start at shop.example/returns/. "
        "Or at https://shop.example/free-refund. Visit https://Shop.example.",
        [],
        backing=SUPPORT.text,
    )
    assert checked.text == (
        "Call 1 (800) 555-0199. Mail SUPPORT@shop.example. Returns start at "
        "shop.example/returns/. Visit https://Shop.example."
    )
    assert checked.removed == [
        "Or call 1-800-555-0100.",
        "Mail refunds@shop.example.",
        "Or at https://shop.example/free-refund.",
    ]
    model = ScriptedChatModel("[1] is waterproof. Call 1-800-555-0199 on weekdays.")
    writer = ReplyWriter(model, "Test Shop")
    assert streamed(writer, [shell()]) == "Storm Shell ($59.00) is waterproof."  # no backing

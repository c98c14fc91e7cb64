"""``pearl chat``: one streamed reply from the configured model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from pearlpoint.commands.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ConfigOpt,
    ModelNameOpt,
    ModelOpt,
    settings_from_flags,
)


def register(app: typer.Typer) -> None:
    @app.command()
    def chat(
        text: str = typer.Argument(..., help="What to say to the model."),
        model: str | None = ModelOpt,
        model_name: str | None = ModelNameOpt,
        base_url: str | None = BaseUrlOpt,
        api_key: str | None = ApiKeyOpt,
        system: str | None = typer.Option(None, "--system", help="Optional system message."),
        max_tokens: int | None = typer.Option(None, "--max-tokens", help="Longest reply, in tokens."),
        temperature: float | None = typer.Option(None, "--temperature"),
        no_stream: bool = typer.Option(False, "--no-stream", help="Print the reply at the end instead."),
        config: Path | None = ConfigOpt,
    ) -> None:
        """Send TEXT to the configured model and stream its reply."""
        from pearlpoint.llm import GenerationParams, Message, get_model

        settings = settings_from_flags(config, model=model, model_name=model_name, base_url=base_url,
                                       api_key=api_key, max_tokens=max_tokens, temperature=temperature)
        llm = get_model(settings=settings)
        messages = ([Message(role="system", content=system)] if system else []) + [Message(role="user", content=text)]
        params = GenerationParams(temperature=settings.temperature, max_tokens=settings.max_tokens)

        async def run() -> None:
            try:
                if no_stream:
                    result = await llm.chat(messages, params=params)
                    typer.echo(result.text)
                    return
                async for piece in llm.stream(messages, params=params):
                    typer.echo(piece, nl=False)
                typer.echo()
            finally:
                await llm.aclose()

        asyncio.run(run())

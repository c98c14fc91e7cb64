"""``pearl convert-gguf``: the bundled SmolLM2 GGUF (or any GGUF) -> a trainable transformers directory."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("convert-gguf")
    def convert_gguf_cmd(
        out: Path | None = typer.Option(None, "--out", "-o", help="Output directory "
                                        "(default: ~/.cache/pearlpoint/smollm2-135m-instruct-hf)."),
        gguf: Path | None = typer.Option(None, "--gguf", help="A GGUF file (default: the bundled SmolLM2)."),
        force: bool = typer.Option(False, "--force", help="Convert again even if OUT is already done."),
    ) -> None:
        """De-quantise a GGUF model into a transformers directory for `pearl train` and the hf backend."""
        from rich.console import Console

        from pearlpoint.train.convert import convert_gguf

        console = Console(stderr=True)
        with console.status("converting GGUF to transformers (about 20 s for SmolLM2-135M)..."):
            result = convert_gguf(out, gguf=gguf, force=force)
        verb = "already converted" if result.reused else f"converted in {result.seconds:.1f} s"
        console.print(f"{result.out_dir}: {verb} ({result.parameters / 1e6:.0f}M parameters). "
                      f"Use it with `pearl train ... --model {result.out_dir}` or "
                      f"`pearl chat --model hf --model-name {result.out_dir}`.", highlight=False)

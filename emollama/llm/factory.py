"""One spec string → a chat backend: ``http(s)://…`` (OpenAI-compatible), ``*.gguf``, or a model folder.

The spec is a plain picklable value so worker processes and Ray actors can each build their own
backend (HTTP connections and loaded models do not cross process boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emollama.errors import InputError
from emollama.llm.backend import ChatBackend
from emollama.llm.cache import CachedBackend


@dataclass(frozen=True)
class LLMSpec:
    """What ``--llm`` and its options name: ``target`` (URL, ``.gguf`` path or folder) and how to call it."""

    target: str
    model: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    max_concurrency: int = 4
    cache_dir: str | None = None

    @property
    def kind(self) -> str:
        if self.target.startswith(("http://", "https://")):
            return "http"
        if self.target.lower().endswith(".gguf"):
            return "gguf"
        return "transformers"

    @property
    def accepts_images(self) -> bool:
        """Whether this kind of backend can pass an image to the model at all.

        Only the HTTP backend forwards image parts; whether the *served model* reads them is
        something only the server knows, hence the explicit opt-in (``--llm-vision``).
        """
        return self.kind == "http"


def make_backend(spec: LLMSpec) -> ChatBackend:
    """Build the backend the spec names, wrapped in the content-hash cache when ``cache_dir`` is set."""
    backend: ChatBackend
    if spec.kind == "http":
        if not spec.model:
            raise InputError("an http:// LLM needs a model name (--llm-model), as the server expects it")
        from emollama.llm.openai_http import OpenAICompatibleBackend

        backend = OpenAICompatibleBackend(spec.target, spec.model, spec.api_key, timeout_s=spec.timeout_s,
                                          max_retries=spec.max_retries, max_concurrency=spec.max_concurrency)
    elif spec.kind == "gguf":
        from emollama.llm.llama_cpp_local import LlamaCppBackend

        backend = LlamaCppBackend(spec.target)
    else:
        if not Path(spec.target).is_dir():
            raise InputError(f"--llm {spec.target!r}: not an http(s) URL, a .gguf file or a model folder")
        from emollama.llm.transformers_local import TransformersBackend

        backend = TransformersBackend(spec.target)
    if spec.cache_dir:
        backend = CachedBackend(backend, spec.cache_dir)
    return backend

"""Chat backend on a local GGUF file through llama-cpp-python (optional dependency).

``llama_cpp`` is imported only when this backend is built, so emollama installs and runs without
it; a missing package is a :class:`~emollama.errors.ModelUnavailableError` telling the user what
to install. Generation is serialised with a lock: one ``Llama`` object is not thread-safe. Images
are refused (:func:`~emollama.llm.backend.message_text`): a plain GGUF chat model has no vision
encoder; serve a multimodal model over HTTP instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emollama.errors import ModelUnavailableError
from emollama.llm.backend import ChatMessage, ChatReply, LLMReplyError, LLMRequestError, message_text


class LlamaCppBackend:
    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 chat_format: str | None = None, llama: Any = None) -> None:
        path = Path(model_path)
        if llama is None:
            if not path.is_file():
                raise ModelUnavailableError(f"GGUF model file {path} does not exist")
            try:
                from llama_cpp import Llama  # type: ignore[import-not-found]
            except ImportError:
                raise ModelUnavailableError(
                    "llama-cpp-python is not installed; `pip install llama-cpp-python` to use a local GGUF model "
                    "(or serve it with llama.cpp's server and pass its http:// URL)") from None
            llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, chat_format=chat_format,
                          verbose=False)
        self._llama = llama
        self._model = path.name
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self._model

    def complete(self, messages: Sequence[ChatMessage], *, temperature: float = 0.0,
                 max_tokens: int = 512) -> ChatReply:
        plain = [{"role": m["role"], "content": message_text(m, f"llama.cpp model {self._model}")} for m in messages]
        try:
            with self._lock:
                out = self._llama.create_chat_completion(messages=plain,
                                                         temperature=temperature, max_tokens=max_tokens)
        except (RuntimeError, ValueError) as exc:
            raise LLMRequestError(f"llama.cpp generation failed: {exc}") from exc
        try:
            text = out["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMReplyError("llama.cpp returned no choices[0].message.content") from exc
        if not isinstance(text, str):
            raise LLMReplyError("llama.cpp returned a non-text message")
        return ChatReply(text=text, model=self._model, raw=dict(out))

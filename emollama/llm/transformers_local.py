"""Chat backend on a local Hugging Face model folder (``from_pretrained`` layout), CPU or GPU.

Nothing is downloaded: the folder must hold the config, weights and tokenizer
(``local_files_only=True``). The tokenizer's chat template formats the messages when it has one;
otherwise a plain "role: content" layout is used, so base models also work. Only text is read:
an image part raises (see :func:`~emollama.llm.backend.message_text`), because a causal LM loaded
this way has no vision encoder and would otherwise answer about a picture it never saw.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emollama.errors import ModelUnavailableError
from emollama.llm.backend import ChatMessage, ChatReply, LLMRequestError, message_text


class TransformersBackend:
    def __init__(self, folder: str | Path, *, device: str = "cpu", dtype: str | None = None) -> None:
        path = Path(folder)
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{path} is not a Hugging Face model folder (no config.json)")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            kwargs = {"dtype": getattr(torch, dtype)} if dtype else {}
            self.lm = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, **kwargs).to(device).eval()
        except Exception as exc:
            # A broken folder fails in library-specific ways (OSError for a missing file, ValueError
            # for a bad config, safetensors' own error for truncated weights, ...); the user needs one
            # error naming the folder, not whichever exception the loader happened to raise.
            raise ModelUnavailableError(f"cannot load the model in {path}: {type(exc).__name__}: {exc}") from exc
        self.device = device
        self._model = path.name
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self._model

    def _prompt(self, messages: Sequence[ChatMessage]) -> str:
        plain = [{"role": m["role"], "content": message_text(m, f"local model {self._model}")} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
        return "\n".join(f"{m['role']}: {m['content']}" for m in plain) + "\nassistant:"

    def complete(self, messages: Sequence[ChatMessage], *, temperature: float = 0.0,
                 max_tokens: int = 512) -> ChatReply:
        import torch

        prompt = self._prompt(messages)
        enc = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        sample = temperature > 0
        gen_kwargs: dict[str, Any] = {"max_new_tokens": max_tokens, "do_sample": sample}
        if sample:
            gen_kwargs["temperature"] = temperature
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token_id is not None:
            gen_kwargs["pad_token_id"] = self.tokenizer.eos_token_id
        try:
            with self._lock, torch.no_grad():
                out = self.lm.generate(**enc, **gen_kwargs)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise LLMRequestError(f"generation with {self._model} failed: {exc}") from exc
        new = out[0, enc["input_ids"].shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return ChatReply(text=text.strip(), model=self._model,
                         raw={"prompt_tokens": int(enc["input_ids"].shape[1]), "completion_tokens": int(new.shape[0])})

"""Local LLM backends: generation on a tiny random Llama saved to disk, clear errors on broken folders.

The tokenizer is built offline (a ``tokenizers`` word-level model wrapped in
``PreTrainedTokenizerFast``, with a chat template), so the test needs no download and still runs the
real ``from_pretrained`` → chat template → ``generate`` → decode path the backend uses.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from emollama.errors import ModelUnavailableError
from emollama.llm import CachedBackend, LLMRequestError, LLMSpec, image_part, make_backend, text_part

WORDS = ["the", "a", "person", "face", "voice", "smile", "happy", "sad", "says", "mouth", "eyes", "tone", "clip",
         "and", "is", "looks", "calm"]
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>"]
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")
MESSAGES = [{"role": "system", "content": "the clip"}, {"role": "user", "content": "the person says happy"}]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + ROLE_TOKENS + WORDS + [".", ",", ":"])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>",
                                        bos_token="<s>", eos_token="</s>", additional_special_tokens=ROLE_TOKENS)
    tokenizer.chat_template = TEMPLATE
    folder = tmp_path_factory.mktemp("llm") / "tiny-llama"
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"])
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_transformers_folder_generates_what_the_model_generates(tiny_llama: Path, tmp_path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from emollama.llm.transformers_local import TransformersBackend

    backend = make_backend(LLMSpec(str(tiny_llama)))
    assert isinstance(backend, TransformersBackend) and backend.model == "tiny-llama"
    reply = backend.complete(MESSAGES, max_tokens=6)
    assert isinstance(reply.text, str) and reply.text and reply.model == "tiny-llama"
    assert set(reply.text.split()) <= set(WORDS + [".", ",", ":"])  # decoded words, special tokens skipped
    assert 1 <= reply.raw["completion_tokens"] <= 6

    # The same greedy generation done directly with transformers gives the same text: the backend
    # applies the chat template and cuts the prompt off correctly.
    tok = AutoTokenizer.from_pretrained(tiny_llama, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(tiny_llama, local_files_only=True).eval()
    prompt = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<|system|> the clip") and prompt.endswith("<|assistant|>")
    ids = tok(prompt, return_tensors="pt")
    assert reply.raw["prompt_tokens"] == ids["input_ids"].shape[1]
    with torch.no_grad():
        out = lm.generate(**ids, max_new_tokens=6, do_sample=False)
    assert reply.text == tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    # Text-only content parts are joined; an image is refused instead of silently dropped.
    parts = [{"role": "user", "content": [text_part("the person"), text_part("says happy")]}]
    assert backend.complete(parts, max_tokens=3).raw["prompt_tokens"] == \
        backend.complete([{"role": "user", "content": "the person\nsays happy"}], max_tokens=3).raw["prompt_tokens"]
    with pytest.raises(LLMRequestError, match="reads text only"):
        backend.complete([{"role": "user", "content": [text_part("x"), image_part(b"\xff\xd8")]}])

    cached = make_backend(LLMSpec(str(tiny_llama), cache_dir=str(tmp_path / "cache")))
    assert isinstance(cached, CachedBackend)
    first, second = cached.complete(MESSAGES, max_tokens=6), cached.complete(MESSAGES, max_tokens=6)
    assert first.text == reply.text and not first.cached and second.cached and second.text == reply.text


def _drop(*names: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        for name in names:
            (folder / name).unlink()
    return apply


BREAKAGES: dict[str, Callable[[Path], None]] = {
    "no weights": _drop("model.safetensors"),
    "truncated weights": lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 16),
    "config not json": lambda d: (d / "config.json").write_text("{model_type: llama", encoding="utf-8"),
    "unknown architecture": lambda d: (d / "config.json").write_text(json.dumps({"model_type": "no-such-arch"})),
    "no tokenizer": _drop("tokenizer.json", "tokenizer_config.json"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_broken_folder_gives_one_clear_error(tiny_llama: Path, tmp_path, breakage: str) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(tiny_llama, folder)
    BREAKAGES[breakage](folder)
    with pytest.raises(ModelUnavailableError, match=f"cannot load the model in {folder}"):
        make_backend(LLMSpec(str(folder)))


def test_gguf_path_that_does_not_exist_is_named(tmp_path) -> None:
    """The missing-install case is in test_llm_fine; a wrong path must not be reported as a missing package."""
    from emollama.llm.llama_cpp_local import LlamaCppBackend

    with pytest.raises(ModelUnavailableError, match=r"absent\.gguf does not exist"):
        LlamaCppBackend(tmp_path / "absent.gguf")

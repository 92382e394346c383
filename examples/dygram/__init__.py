"""DyGram: a toy LLM-backed translator from .dy state machines to a pydantic IR."""

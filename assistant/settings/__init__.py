"""The one place defaults live: one typed `Settings`, its fields grouped by the part they configure
(knowledge.py, llm.py, chat.py, web.py, runs.py).

Every setting can be overridden by an environment variable `ASSISTANT_<NAME>` (lists as JSON, e.g.
`ASSISTANT_CORPUS_PATHS='["corpus", "~/notes"]'`) or by a TOML config file: `ASSISTANT_CONFIG=path`,
else `assistant.toml` in the working directory if present. Environment beats file beats default.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.settings.chat import ChatSettings
from assistant.settings.knowledge import KnowledgeSettings
from assistant.settings.llm import LLMSettings
from assistant.settings.paths import PACKAGE_DIR, PROJECT_DIR
from assistant.settings.runs import RunSettings
from assistant.settings.web import WebSettings

__all__ = ["PACKAGE_DIR", "PROJECT_DIR", "Settings", "config_file"]


def config_file() -> Path | None:
    """The TOML file settings are read from, if any."""
    explicit = os.environ.get("ASSISTANT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path.cwd() / "assistant.toml"
    return local if local.exists() else None


class Settings(RunSettings, WebSettings, ChatSettings, LLMSettings, KnowledgeSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="ignore", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            if not path.exists():
                raise FileNotFoundError(f"config file {path} (from ASSISTANT_CONFIG) does not exist")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def server_mode(self) -> bool:
        return self.chroma_mode == "server" or bool(self.chroma_url)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def uploads_dir(self) -> Path:
        return self.shared_uploads_dir or self.data_dir / "uploads"

    @property
    def database_file(self) -> Path:
        return self.data_dir / "assistant.db"

    @property
    def feedback_file(self) -> Path:
        return self.data_dir / "feedback.jsonl"

    def describe(self) -> list[tuple[str, object, str]]:
        """(name, effective value, description) for every setting, for `assistant config`."""
        return [
            (name, getattr(self, name), field.description or "")
            for name, field in type(self).model_fields.items()
        ]
